"""The `paged` engine: continuous batching over a paged KV cache, instrumented every step.

    arms:
      paged: {engine: paged, block_size: 16, kv_budget_tokens: 8192, max_num_seqs: 64}
      paged_ngram: {engine: paged, speculative: {method: prompt_lookup, ngram: 3, num_draft_tokens: 8}}

`step()` is schedule -> run -> postprocess (nano-vllm). After every step the KV ledger
(engines/base.py, shared with the hf engine) records slots allocated (blocks in use x block_size) against
slots holding computed tokens, so kv_waste_pct means the same thing for both engines.

With a `speculative:` section, each step first drafts up to k tokens per decoding sequence
(testbed/speculative/batched.py); the same forward then verifies every sequence's k + 1 positions.
"""
import time

import psutil
import torch
from pydantic import Field, model_validator

from testbed.engines.base import ENGINES, Engine, EngineOptions, KVLedger, context_overflow
from testbed.engines.paged.block_manager import BlockManager, blocks_for
from testbed.engines.paged.linear import packed_bytes
from testbed.engines.paged.model_runner import ModelRunner, cache_bytes_for
from testbed.engines.paged.scheduler import ScheduledBatch, Scheduler, SchedulerConfig
from testbed.engines.paged.sequence import Sequence
from testbed.errors import UserError
from testbed.request import Request
from testbed.speculative.batched import BatchSpeculator
from testbed.speculative.verify import unsupported_sampling


class PagedOptions(EngineOptions):
    block_size: int = Field(16, ge=1, le=1024, description="tokens per KV block")
    kv_budget_tokens: int | None = Field(None, ge=1, description="KV cache size in tokens (rounded down to blocks)")
    num_blocks: int | None = Field(None, ge=1, description="KV cache size in blocks (instead of kv_budget_tokens)")
    max_num_seqs: int = Field(64, ge=1, description="most sequences running at once")
    max_num_batched_tokens: int = Field(512, ge=1, description="token budget of one step (prefill + decode)")
    enable_prefix_caching: bool = True
    chunked_prefill: bool = True
    watermark: float = Field(0.0, ge=0, lt=1,
                             description="share of blocks kept free when admitting (fewer preemptions)")
    prepacked_linear: bool | None = Field(None, description="oneDNN prepacked matmul weights; default: on for "
                                                            "float32 on the CPU (engines/paged/linear.py)")

    @model_validator(mode="after")
    def _one_size(self):
        if self.kv_budget_tokens is not None and self.num_blocks is not None:
            raise ValueError("give kv_budget_tokens or num_blocks, not both")
        return self

    def blocks(self) -> int:
        if self.num_blocks is not None:
            return self.num_blocks
        return max(1, (self.kv_budget_tokens or 16384) // self.block_size)


def available_bytes(device: torch.device) -> int:
    """Free memory where the KV cache would live: the GPU's free bytes, else the host's available RAM."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return psutil.virtual_memory().available


@ENGINES.register("paged")
class PagedEngine(Engine):
    honours = frozenset({"speculative", "routing"})
    Options = PagedOptions

    def __init__(self, model, options: PagedOptions, sections=None):
        super().__init__(model, options, sections)
        n = options.blocks()
        self.runner = ModelRunner(model, n, options.block_size, options.prepacked_linear)
        self.blocks = BlockManager(n, options.block_size, options.enable_prefix_caching)
        self.scheduler = Scheduler(SchedulerConfig(options.max_num_seqs, options.max_num_batched_tokens,
                                                   options.chunked_prefill, int(options.watermark * n)), self.blocks)
        self.kv = KVLedger()
        self.peak_blocks = 0
        self.peak_seqs = 0
        self.steps = 0
        self.step_tokens = 0
        spec = self.sections.get("speculative")
        self.speculator = None if spec is None else \
            BatchSpeculator(spec, model, options.block_size, n, options.max_num_seqs)

    @classmethod
    def held_memory(cls, lm, options: PagedOptions, sections, device) -> dict:
        """The KV pool (allocated at start) and the packed copy of the weights (engines/paged/linear.py),
        one per model for all its paged arms."""
        held = {("kv", id(options)): cache_bytes_for(lm, options.blocks(), options.block_size)}
        size = packed_bytes(lm, options.prepacked_linear)
        return {**held, ("packed", id(lm.model)): size} if size else held

    @property
    def capacity_tokens(self) -> int:
        return self.blocks.block_size * len(self.blocks.blocks)

    def validate_request(self, req: Request) -> str | None:
        reason = super().validate_request(req)
        o = self.options
        need = req.num_prompt_tokens + req.max_new_tokens
        if reason is None and not o.chunked_prefill and need > o.max_num_batched_tokens:
            reason = (f"prompt {req.num_prompt_tokens} + max_new_tokens {req.max_new_tokens} exceeds "
                      f"max_num_batched_tokens {o.max_num_batched_tokens} with chunked_prefill off")
        if reason is None and self.speculator is not None:
            reason = unsupported_sampling(req.sampling)
        return reason

    def check_request(self, req: Request) -> None:
        """UserError when the whole KV budget cannot hold this request even alone."""
        self.check_kv_budget(self.options, req)

    @staticmethod
    def check_kv_budget(options: PagedOptions, req: Request) -> None:
        n, bs = options.blocks(), options.block_size
        need = blocks_for(req.num_prompt_tokens + req.max_new_tokens - 1, bs)
        if need > n:
            raise UserError(f"engine paged: KV budget of {n * bs} tokens ({n} blocks of {bs}) cannot hold request "
                            f"{req.id!r} ({req.num_prompt_tokens} prompt + {req.max_new_tokens} new tokens) even alone",
                            f"raise kv_budget_tokens to at least {need * bs} (or num_blocks to {need}), "
                            "or lower max_new_tokens")

    @staticmethod
    def check_kv_memory(lm, options: PagedOptions) -> None:
        """UserError when the KV cache would not fit the device's free memory (checked before allocating it)."""
        need = cache_bytes_for(lm, options.blocks(), options.block_size)
        free = available_bytes(lm.device)
        if need > free:
            raise UserError(f"engine paged: a KV cache of {options.blocks() * options.block_size} tokens needs "
                            f"{need / 2**30:.1f} GiB, more than the {free / 2**30:.1f} GiB free on {lm.device}",
                            f"lower kv_budget_tokens to at most {free // (need // options.blocks()) * options.block_size}")

    @classmethod
    def check_arm(cls, lm, options: PagedOptions, sections, requests, items=None) -> None:
        """Before the run: the KV cache must fit in memory and hold the longest request that fits the context."""
        super().check_arm(lm, options, sections, requests, items)
        cls.check_kv_memory(lm, options)
        fits = [r for r in requests if context_overflow(lm, r) is None]
        if fits:
            cls.check_kv_budget(options, max(fits, key=lambda r: r.num_prompt_tokens + r.max_new_tokens))

    def add_request(self, req: Request) -> None:
        if self.reject_if_invalid(req):
            return
        self.check_request(req)
        req.status = "running"
        self.scheduler.add(Sequence.from_request(req))

    def abort_request(self, request_id: str) -> Request | None:
        """Drop a request between steps and mark it cancelled; a running one gives its KV blocks back.

        Blocks shared through the prefix cache lose one reference each, so they stay with the
        sequences still holding them; blocks nobody holds return to the free queue with their
        hashes (a later request with the same prefix can still hit them).
        """
        if (req := self.abort_rejected(request_id)) is not None:
            return req
        seq = self.scheduler.abort(request_id)
        if seq is None:
            return None
        seq.request.cancelled = True
        return seq.request

    def gauges(self) -> dict[str, int]:
        """The KV cache right now (a server's /metrics reads this between and during steps)."""
        return {"kv_blocks_in_use": self.blocks.num_used, "kv_blocks_total": len(self.blocks.blocks),
                "seqs_running": len(self.scheduler.running), "seqs_waiting": len(self.scheduler.waiting)}

    def has_unfinished(self) -> bool:
        return bool(self.rejected) or self.scheduler.has_unfinished()

    def step(self) -> list[Request]:
        done = self.take_rejected()
        if self.speculator is not None:
            self.speculator.propose(self.scheduler.running)     # draft tokens for decoding sequences
        batch = self.scheduler.schedule()
        if not batch.items:
            return done
        self.peak_seqs = max(self.peak_seqs, len(self.scheduler.running))
        self.runner.copy_blocks(batch.copies)
        drafted = BatchSpeculator.drafted(batch.items)
        t0 = time.perf_counter()
        tokens = self.runner.run(batch.items)
        now = time.perf_counter()
        if self.speculator is not None:
            self.speculator.record(batch.items, drafted, tokens, now - t0)
        finished = self.scheduler.postprocess(batch, tokens, now)
        self._account(batch)
        if self.speculator is not None:
            for seq in finished:
                self.speculator.finish(seq)
        return done + [seq.request for seq in finished]

    def _account(self, batch: ScheduledBatch) -> None:
        """Sample KV use after the step: blocks in use vs tokens they hold (shared blocks once)."""
        bs = self.blocks.block_size
        held: dict[int, int] = {}
        for seq in self.scheduler.running:
            for i, bid in enumerate(seq.block_table):
                held[bid] = max(held.get(bid, 0), min(bs, seq.num_computed - i * bs))
        used_blocks = self.blocks.num_used
        self.kv.record(used_blocks * bs, sum(held.values()))
        self.peak_blocks = max(self.peak_blocks, used_blocks)
        self.steps += 1
        self.step_tokens += batch.num_tokens

    def stats(self) -> dict[str, float]:
        out = self.kv.metrics()
        st = self.scheduler.stats
        out.update({"kv_peak_blocks": self.peak_blocks, "max_concurrent_seqs": self.peak_seqs,
                    "preemptions": st.preemptions, "kv_capacity_tokens": self.capacity_tokens})
        if st.prefix_query_tokens:
            out["prefix_cache_hit_rate"] = st.prefix_hit_tokens / st.prefix_query_tokens
        if self.steps:
            out["mean_step_tokens"] = self.step_tokens / self.steps
        if self.speculator is not None:
            out.update(self.speculator.stats())
        return out
