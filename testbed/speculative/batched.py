"""Speculative decoding inside a continuous-batching engine: per-sequence drafts, one batched verify.

The paged engine calls it around its schedule -> run -> postprocess step:

    spec = BatchSpeculator(cfg, lm, block_size, num_blocks, max_seqs)   # cfg: the arm's `speculative:` section
    spec.propose(scheduler.running)            # decoding sequences get seq.spec_tokens (k <= their controller's k)
    batch = scheduler.schedule()               # a drafted sequence asks for 1 + k tokens (drafts may shrink)
    drafted = spec.drafted(batch.items)
    tokens = runner.run(batch.items)           # the target scores k + 1 positions per sequence, verify() per row
    spec.record(batch.items, drafted, tokens, forward_s)
    spec.finish(seq)                           # per finished sequence: request stats, totals

Each sequence owns an adaptive or fixed controller and its SpecStats. The proposer drafts for every
decoding sequence in one call (`Proposer.batched`: a draft model runs one forward per draft position
for all of them over its own paged cache; prompt lookup goes sequence by sequence); the target's
verification of every sequence is one forward over the paged KV cache. A step's draft time and
forward time count for every sequence in it, so c (draft time per draft token over verify time per
step) compares what the step spent drafting with what it spent verifying, as with hf at batch 1.
"""
import time
from dataclasses import dataclass, field

from testbed.engines.paged.block_manager import blocks_for
from testbed.speculative.adaptive import Controller
from testbed.speculative.base import Job
from testbed.speculative.decoder import draft_room
from testbed.speculative.stats import SpecStats


@dataclass
class _SeqState:
    controller: Controller
    stats: SpecStats = field(default_factory=SpecStats)
    draft_s: float = 0.0             # the last proposal's time


class BatchSpeculator:
    def __init__(self, cfg, lm, block_size: int = 16, num_blocks: int = 1024, max_seqs: int = 64):
        self.cfg = cfg
        self.lm = lm
        # a draft cache holds what the target's does plus each sequence's k drafts
        slack = max_seqs * blocks_for(cfg.max_draft_tokens + 1, block_size)
        self.proposer = cfg.proposer(lm).batched(block_size, num_blocks + slack)   # built once per arm
        self.states: dict[object, _SeqState] = {}
        self.totals = SpecStats()

    def propose(self, seqs: list) -> None:
        """Set draft tokens on every decoding sequence (an empty draft when its room or the proposer gives none)."""
        self._forget_aborted()
        jobs = []
        for seq in seqs:
            seq.clear_draft()
            if not seq.is_decoding:
                continue
            k = min(self._state(seq).controller.k, draft_room(seq.request, seq.num_tokens, self.lm.max_context))
            if k > 0:
                jobs.append(Job(seq, seq.token_ids, k, seq.request.sampling, seq.generator))
        if not jobs:
            return
        t0 = time.perf_counter()
        drafts = self.proposer.propose(jobs)
        draft_s = time.perf_counter() - t0
        for job, draft in zip(jobs, drafts):
            seq = job.key
            self.states[seq].draft_s = draft_s
            seq.spec_tokens = draft.tokens[:job.k]
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
        self.proposer.forget(seq)
        if st is None:
            return
        st.stats.k_final = [st.controller.k]
        seq.request.stats["speculative"] = st.stats.as_record()
        self.totals.merge(st.stats)

    def stats(self) -> dict:
        return self.totals.metrics()

    def _state(self, seq) -> _SeqState:
        if seq not in self.states:
            self.states[seq] = _SeqState(self.cfg.new_controller())
        return self.states[seq]

    def _forget_aborted(self) -> None:
        """Drop the state of sequences whose request ended outside postprocess (aborted between steps)."""
        for seq in [s for s in self.states if s.request.done]:
            self.finish(seq)
