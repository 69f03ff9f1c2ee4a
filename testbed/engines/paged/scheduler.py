"""Continuous batching: which sequences get how many new tokens this step. Never touches tensors.

    batch = scheduler.schedule()                  # [(seq, n_new_tokens)]: prefill chunks and decodes alike
    tokens = runner.run(batch.items)              # one token (or None) per item
    finished = scheduler.postprocess(batch, tokens, now)

Running sequences go first, oldest first (a decode takes 1 token, an unfinished prefill the
rest of its prompt up to the budget); waiting ones are admitted after, while the token budget,
max_num_seqs and free blocks allow. Long prompts are split into chunks when chunked prefill is
on. When a running sequence needs a block and none is free, the newest running sequence is
preempted: its blocks are freed and it goes back to the front of the queue to be recomputed.
A decoding sequence with draft tokens (speculative decoding) asks for 1 + k tokens; its drafts
shrink to fit the budget and the free blocks, and are dropped before anything is preempted.
"""
from collections import deque
from dataclasses import dataclass, field

from testbed.engines.paged.block_manager import BlockManager
from testbed.engines.paged.sequence import Sequence, SeqStatus


@dataclass
class SchedulerConfig:
    max_num_seqs: int = 64
    max_num_batched_tokens: int = 512
    chunked_prefill: bool = True
    watermark_blocks: int = 0        # blocks left free when admitting, as headroom for running decodes

    def __post_init__(self):
        assert self.max_num_seqs >= 1 and self.max_num_batched_tokens >= 1 and self.watermark_blocks >= 0


@dataclass
class ScheduledBatch:
    items: list[tuple[Sequence, int]] = field(default_factory=list)
    copies: list[tuple[int, int]] = field(default_factory=list)      # copy-on-write block pairs

    @property
    def num_tokens(self) -> int:
        return sum(n for _, n in self.items)


@dataclass
class SchedulerStats:
    preemptions: int = 0
    prefix_query_tokens: int = 0
    prefix_hit_tokens: int = 0


class Scheduler:
    def __init__(self, config: SchedulerConfig, blocks: BlockManager):
        self.config = config
        self.blocks = blocks
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.stats = SchedulerStats()
        self._preempted_now = False      # no admissions in a step that had to preempt

    def add(self, seq: Sequence) -> None:
        self.waiting.append(seq)

    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.running)

    def schedule(self) -> ScheduledBatch:
        batch = ScheduledBatch()
        self._preempted_now = False
        budget = self._schedule_running(batch, self.config.max_num_batched_tokens)
        if not self._preempted_now:
            self._admit_waiting(batch, budget)
        return batch

    def _schedule_running(self, batch: ScheduledBatch, budget: int) -> int:
        i = 0
        while i < len(self.running) and budget > 0:
            seq = self.running[i]
            n = self._fit_draft(seq, budget)
            while not self.blocks.can_append(seq, n) and seq in self.running:
                self._preempt(self.running[-1])
            if seq not in self.running:
                break
            batch.copies += self.blocks.may_append(seq, n)
            batch.items.append((seq, n))
            budget -= n
            i += 1
        return budget

    def _fit_draft(self, seq: Sequence, budget: int) -> int:
        """Tokens to schedule for a running seq: its uncomputed ones plus as many drafts as budget and blocks allow.

        Drafts are dropped before anything is preempted for them."""
        n = min(seq.num_uncomputed, budget)
        k = min(len(seq.spec_tokens), budget - n) if seq.is_decoding else 0
        if k and not self.blocks.can_append(seq, n + k):
            k = 0
        if k < len(seq.spec_tokens):
            probs = seq.spec_probs[:k] if seq.spec_probs is not None and k else None
            seq.spec_tokens, seq.spec_probs = seq.spec_tokens[:k], probs
        return n + k

    def _admit_waiting(self, batch: ScheduledBatch, budget: int) -> None:
        while self.waiting and budget > 0 and len(self.running) < self.config.max_num_seqs:
            seq = self.waiting[0]
            cached = self.blocks.allocate(seq)
            n = seq.num_uncomputed
            if n > budget and not self.config.chunked_prefill:
                self.blocks.deallocate(seq)
                break
            n = min(n, budget)
            headroom = self.config.watermark_blocks if self.running else 0
            if self.blocks.blocks_needed(seq, n) + headroom > self.blocks.num_free:
                self.blocks.deallocate(seq)
                break
            self.waiting.popleft()
            self.stats.prefix_query_tokens += seq.num_tokens
            self.stats.prefix_hit_tokens += cached
            seq.status = SeqStatus.RUNNING
            self.running.append(seq)
            batch.copies += self.blocks.may_append(seq, n)
            batch.items.append((seq, n))
            budget -= n

    def _preempt(self, seq: Sequence) -> None:
        """Free seq's blocks and requeue it at the front; its tokens are recomputed later."""
        self.running.remove(seq)
        self.blocks.deallocate(seq)
        seq.clear_draft()
        seq.status = SeqStatus.WAITING
        self.waiting.appendleft(seq)
        self.stats.preemptions += 1
        self._preempted_now = True

    def abort(self, request_id: str) -> Sequence | None:
        """Remove a waiting or running sequence by request id, freeing its blocks."""
        for queue in (self.waiting, self.running):
            for seq in queue:
                if seq.request.id == request_id:
                    queue.remove(seq)
                    self.blocks.deallocate(seq)
                    seq.status = SeqStatus.FINISHED
                    return seq
        return None

    def postprocess(self, batch: ScheduledBatch, tokens: list[int | list[int] | None], now: float) -> list[Sequence]:
        """Advance computed counts, append sampled tokens with their time; return finished sequences.

        Per item: None (an unfinished prefill chunk), a token, or a speculative step's accepted
        drafts plus one corrected or bonus token. Rejected drafts' slots are not computed, and
        blocks that held only them go back to the free queue."""
        finished = []
        for (seq, n), out in zip(batch.items, tokens):
            emitted = [] if out is None else out if isinstance(out, list) else [out]
            rejected = len(seq.spec_tokens) - max(0, len(emitted) - 1)
            seq.token_ids += emitted          # before commit: accepted drafts fill blocks that get hashed
            seq.num_computed += n - rejected
            seq.clear_draft()
            self.blocks.commit(seq)
            if rejected:
                self.blocks.trim(seq)
            if emitted and seq.request.append_tokens(emitted, now):
                finished.append(self._finish(seq))
        return finished

    def _finish(self, seq: Sequence) -> Sequence:
        seq.status = SeqStatus.FINISHED
        self.running.remove(seq)
        self.blocks.deallocate(seq)
        return seq
