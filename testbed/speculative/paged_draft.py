"""A draft model proposing for many sequences at once over its own paged KV cache (the paged engine).

    drafter = PagedDrafter(draft_model, block_size=16, num_blocks=512)
    drafts = drafter.propose([Job(seq, context, k, sampling, generator), ...])   # one Draft per job
    drafter.forget(seq)                                                          # seq ended: blocks back

Per sequence the drafter keeps the tokens its cache holds. A call first rolls each cache back to the
longest prefix it shares with the sequence's context (rejected drafts leave; blocks that held only
them are freed), then runs one forward over every sequence's unseen tokens (the prompt the first
time, the 1-2 tokens the last step accepted or corrected after that), then k-1 one-token forwards
batched over the sequences: the draft is never re-prefilled and its weights are read once per draft
position for the whole batch, not once per sequence. Sequences with a smaller k leave the later
forwards early. With a `guess` (prompt lookup, greedy), the first forward also feeds the guessed next
tokens and keeps the prefix the draft agrees with, saving one draft forward per agreeing token.
The forward is the paged engine's (ModelRunner), so the draft must be Llama or Qwen2.
"""
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable

import torch

from testbed.engines.paged.attention import build_meta
from testbed.engines.paged.block_manager import BlockManager
from testbed.engines.paged.model_runner import ModelRunner
from testbed.engines.sampling import draw, logits_to_probs
from testbed.speculative.base import BatchProposer, Draft, Job


@dataclass(eq=False)
class DraftSeq:
    """What one sequence's draft cache holds: the first num_computed of token_ids."""
    token_ids: list[int] = field(default_factory=list)
    num_computed: int = 0
    block_table: list[int] = field(default_factory=list)


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the common prefix of two token lists (equal slices compare at C speed)."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    i = 0
    while a[i] == b[i]:
        i += 1
    return i


def agreed(guess: list[int], logits: torch.Tensor) -> int:
    """How many leading guess tokens the draft itself would make: logits [g+1, V], row j after guess[:j]."""
    if not guess:
        return 0
    same = torch.tensor(guess, device=logits.device) == logits[:-1].argmax(-1)              # [g]
    return int(same.long().cumprod(0).sum())


def no_guess(context: list[int], k: int, sampling) -> list[int]:
    return []


class PagedDrafter(BatchProposer):
    def __init__(self, model: Any, block_size: int, num_blocks: int, guess: Callable = no_guess):
        dtype = next(model.parameters()).dtype
        self.runner = ModelRunner(SimpleNamespace(model=model, dtype=dtype, device=model.device),
                                  num_blocks, block_size)
        self.blocks = BlockManager(num_blocks, block_size, prefix_caching=False)
        self.seqs: dict[Any, DraftSeq] = {}
        self.guess = guess          # (context, k, sampling) -> tokens to check before drafting one by one

    def forget(self, key: Any) -> None:
        st = self.seqs.pop(key, None)
        if st is not None:
            self.blocks.deallocate(st)

    def propose(self, jobs: list[Job]) -> list[Draft]:
        drafts = [Draft([]) for _ in jobs]
        probs: list[list[torch.Tensor]] = [[] for _ in jobs]
        live = [(i, st) for i, st in enumerate(self._sync(j, jobs) for j in jobs) if st is not None]
        with torch.inference_mode():
            live, logits = self._first(live, jobs, drafts)                                # [B, V]
            while live:
                for (i, st), (tok, q) in zip(live, self._pick(logits, [jobs[i] for i, _ in live])):
                    drafts[i].tokens.append(tok)
                    st.token_ids.append(tok)
                    if q is not None:
                        probs[i].append(q)
                live = [(i, st) for i, st in live if len(drafts[i].tokens) < jobs[i].k]
                if live:
                    logits = self._forward([st for _, st in live])
        for d, p in zip(drafts, probs):
            d.probs = torch.stack(p) if p else None                                  # q [k, V]
        return drafts

    def _first(self, live: list, jobs: list[Job], drafts: list[Draft]) -> tuple[list, torch.Tensor | None]:
        """One forward over every sequence's unseen tokens and its guess; each keeps the guess prefix the
        draft agrees with. Returns the sequences still drafting and their next-token logits [B, V]."""
        guesses = [self.guess(jobs[i].context, jobs[i].k, jobs[i].sampling) for i, _ in live]
        for (_, st), g in zip(live, guesses):
            st.token_ids += g
        logits = self._forward([st for _, st in live], [len(g) + 1 for g in guesses])      # [sum(g+1), V]
        out, rows, start = [], [], 0
        for (i, st), g in zip(live, guesses):
            block = logits[start:start + len(g) + 1]
            start += len(g) + 1
            n = agreed(g, block)
            drafts[i].tokens += g[:n]
            del st.token_ids[len(st.token_ids) - len(g) + n:]      # the rest of the guess leaves the cache
            st.num_computed = len(st.token_ids)
            if n < jobs[i].k:
                out.append((i, st))
                rows.append(block[n])
        return out, torch.stack(rows) if rows else None

    def _sync(self, job: Job, jobs: list[Job]) -> DraftSeq | None:
        """Roll the sequence's draft cache back to what it shares with the context and reserve slots
        for this call (unseen tokens + k-1 drafts); None when the draft cache has no room for it."""
        st = self.seqs.setdefault(job.key, DraftSeq())
        keep = min(common_prefix(st.token_ids[:st.num_computed], job.context), len(job.context) - 1)
        st.token_ids, st.num_computed = list(job.context), keep
        self.blocks.trim(st)
        need = len(job.context) - keep + job.k          # unseen tokens + a guess or k-1 drafts (at most k)
        if not self.blocks.can_append(st, need):
            self._evict_idle({j.key for j in jobs})
            if not self.blocks.can_append(st, need):
                return None
        self.blocks.may_append(st, need)
        return st

    def _evict_idle(self, active: set) -> None:
        """Free the caches of sequences not drafting now (preempted ones recompute theirs later)."""
        for key in [k for k in self.seqs if k not in active]:
            self.forget(key)

    def _forward(self, seqs: list[DraftSeq], rows: list[int] | None = None) -> torch.Tensor:
        """Feed every sequence its uncomputed tokens; logits at each one's last rows[i] positions (default 1),
        concatenated [sum(rows), V]."""
        ids, pos, items, last = [], [], [], []
        for j, st in enumerate(seqs):
            new = st.token_ids[st.num_computed:]
            ids += new
            pos += range(st.num_computed, st.num_computed + len(new))
            items.append((st.num_computed, len(new), st.block_table))
            last += range(len(ids) - (rows[j] if rows else 1), len(ids))
            st.num_computed += len(new)
        dev = self.runner.lm.device
        meta = build_meta(items, self.runner.block_size, dev)
        hidden = self.runner.forward(torch.tensor(ids, device=dev), torch.tensor(pos, device=dev), meta)
        return self.runner.logits(hidden[torch.tensor(last, device=dev)]).float()

    @staticmethod
    def _pick(logits: torch.Tensor, jobs: list[Job]) -> list[tuple[int, torch.Tensor | None]]:
        """The draft token per row: argmax, or a sample with the distribution q it came from."""
        if all(j.sampling.greedy for j in jobs):
            return [(t, None) for t in logits.argmax(-1).tolist()]
        out = []
        for row, j in zip(logits, jobs):
            if j.sampling.greedy:
                out.append((int(row.argmax()), None))
            else:
                q = logits_to_probs(row, j.sampling)
                out.append((draw(q, j.generator), q))
        return out
