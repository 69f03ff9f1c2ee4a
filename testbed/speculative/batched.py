"""Speculative decoding inside a continuous-batching engine: per-sequence drafts, one batched verify.

The paged engine calls it around its schedule -> run -> postprocess step:

    spec = BatchSpeculator(cfg, lm)            # cfg: the arm's validated `speculative:` section
    spec.propose(scheduler.running)            # decoding sequences get seq.spec_tokens (k <= their controller's k)
    batch = scheduler.schedule()               # a drafted sequence asks for 1 + k tokens (drafts may shrink)
    drafted = spec.drafted(batch.items)
    tokens = runner.run(batch.items)           # the target scores k + 1 positions per sequence, verify() per row
    spec.record(batch.items, drafted, tokens, forward_s)
    spec.finish(seq)                           # per finished sequence: request stats, totals

Each sequence owns a forked proposer (a draft model's KV cache is per sequence; its weights are
shared), an adaptive or fixed controller and its SpecStats. Drafting runs sequence by sequence;
the target's verification of every sequence is one forward over the paged KV cache. A step's
forward time counts as the verify time of every sequence in it, so spec_verify_time_s / steps is
the mean step time, as with hf at batch 1.
"""
import time
from dataclasses import dataclass, field

from testbed.speculative.adaptive import Controller
from testbed.speculative.base import Proposer
from testbed.speculative.decoder import draft_room
from testbed.speculative.stats import SpecStats


@dataclass
class _SeqState:
    proposer: Proposer
    controller: Controller
    stats: SpecStats = field(default_factory=SpecStats)
    draft_s: float = 0.0             # the last proposal's time


class BatchSpeculator:
    def __init__(self, cfg, lm):
        self.cfg = cfg
        self.lm = lm
        self.proposer = cfg.proposer(lm)        # built once per arm; forked per sequence
        self.states: dict[object, _SeqState] = {}
        self.totals = SpecStats()

    def propose(self, seqs: list) -> None:
        """Set draft tokens on every decoding sequence (an empty draft when its room or the proposer gives none)."""
        self._forget_aborted()
        for seq in seqs:
            seq.clear_draft()
            if not seq.is_decoding:
                continue
            st = self._state(seq)
            k = min(st.controller.k, draft_room(seq.request, seq.num_tokens, self.lm.max_context))
            if k <= 0:
                continue
            t0 = time.perf_counter()
            draft = st.proposer.propose(seq.token_ids, k, seq.request.sampling, seq.generator)
            st.draft_s = time.perf_counter() - t0
            seq.spec_tokens = draft.tokens[:k]
            if draft.probs is not None and seq.spec_tokens:
                seq.spec_probs = draft.probs[:len(seq.spec_tokens)]

    @staticmethod
    def drafted(items: list) -> list[int | None]:
        """Per scheduled item: draft tokens it verifies (0 for a plain decode), None for a prefill chunk."""
        return [len(seq.spec_tokens) if seq.is_decoding else None for seq, _ in items]

    def record(self, items: list, drafted: list[int | None], tokens: list, forward_s: float) -> None:
        """Count each decode step: proposed, accepted (emitted − 1), draft and verify time."""
        for (seq, _), k, out in zip(items, drafted, tokens):
            st = self.states.get(seq)
            if k is None or st is None:
                continue
            accepted = len(out) - 1 if isinstance(out, list) else 0
            draft_s = st.draft_s if k else 0.0
            st.stats.record(k, accepted, draft_s, forward_s)
            st.controller.update(k, accepted, draft_s, forward_s)
            st.draft_s = 0.0

    def finish(self, seq) -> None:
        """A sequence ended: its stats go to its request and into the totals."""
        st = self.states.pop(seq, None)
        if st is None:
            return
        st.stats.k_final = [st.controller.k]
        seq.request.stats["speculative"] = st.stats.as_record()
        self.totals.merge(st.stats)

    def stats(self) -> dict:
        return self.totals.metrics()

    def _state(self, seq) -> _SeqState:
        if seq not in self.states:
            self.states[seq] = _SeqState(self.proposer.fork(), self.cfg.new_controller())
        return self.states[seq]

    def _forget_aborted(self) -> None:
        """Drop the state of sequences whose request ended outside postprocess (aborted between steps)."""
        for seq in [s for s in self.states if s.request.done]:
            self.finish(seq)
