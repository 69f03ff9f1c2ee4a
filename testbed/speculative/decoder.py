"""The speculative decode loop: prefill, then propose k, verify k+1 in one forward, roll back, repeat.

    decoder = SpeculativeDecoder(lm, proposer, controller_factory)
    decoder.run_batch(requests)        # appends tokens with timestamps; fails requests it cannot serve
    decoder.stats()                    # flat metrics: spec_acceptance_rate, spec_mean_accepted_tokens, ...

Rows of a batch are decoded one after another (batch 1 inside the batch). Rows accept
different numbers of tokens per step, so a batched verify needs a ragged KV cache; that is the
paged engine's job. The per-row loop is exact and keeps every cache contiguous.

KV invariant: the target cache holds context[:-1], every token but the last one emitted. A step
feeds [context[-1], d_1 .. d_k] (k+1 positions), keeps the accepted prefix and crops the rest,
so the cache again ends just before the newest token. The draft cache is kept by the proposer.
"""
import time
from typing import Callable

import torch
from transformers import DynamicCache

from testbed.engines.hf_cache import forward, new_cache, rollback
from testbed.engines.sampling import make_generator, sample_one
from testbed.request import Request
from testbed.speculative.adaptive import Controller
from testbed.speculative.base import Proposer
from testbed.speculative.stats import SpecStats
from testbed.speculative.verify import unsupported_sampling, verify


class SpeculativeDecoder:
    def __init__(self, lm, proposer: Proposer, new_controller: Callable[[], Controller]):
        self.lm = lm
        self.proposer = proposer
        self.new_controller = new_controller
        self.totals = SpecStats()

    def run_batch(self, batch: list[Request]) -> None:
        """Decode every request of the batch to completion, one row at a time."""
        for req in batch:
            reason = unsupported_sampling(req.sampling)
            if reason:
                req.fail(reason)
            elif not req.done:
                self.run_request(req)

    def run_request(self, req: Request) -> None:
        stats, controller = SpecStats(), self.new_controller()
        gen = make_generator(req.sampling, self.lm.device)
        cache = new_cache(self.lm.model)
        self.proposer.reset()
        with torch.inference_mode():
            # prompt + output: a request the server resumed after an engine error continues where it was
            logits = forward(self.lm.model, req.prompt_ids + req.output_ids, cache, keep=1)  # [1, V]
            done = req.append_tokens([sample_one(logits[-1], req.sampling, gen)], time.perf_counter())
            while not done:
                done = self._step(req, cache, controller, stats, gen)
        stats.k_final = [controller.k]
        req.stats["speculative"] = stats.as_record()
        self.totals.merge(stats)

    def _step(self, req: Request, cache: DynamicCache, controller: Controller, stats: SpecStats,
              gen: torch.Generator | None) -> bool:
        """One propose + verify step; returns True when the request is done."""
        context = req.prompt_ids + req.output_ids
        k = min(controller.k, self._room(req, len(context)))
        t0 = time.perf_counter()
        draft = self.proposer.propose(context, k, req.sampling, gen) if k > 0 else None
        tokens = draft.tokens[:k] if draft else []
        t1 = time.perf_counter()
        logits = forward(self.lm.model, context[-1:] + tokens, cache, keep=len(tokens) + 1)   # [k+1, V]
        probs = draft.probs[:len(tokens)] if draft and draft.probs is not None else None
        emitted, n = verify(torch.tensor(tokens, dtype=torch.long, device=logits.device), logits,
                            req.sampling, probs, gen)
        rollback(cache, len(context) + n)                    # context[:-1] + context[-1] + accepted drafts
        now = time.perf_counter()
        stats.record(len(tokens), n, t1 - t0, now - t1)
        controller.update(len(tokens), n, t1 - t0, now - t1)
        return req.append_tokens(emitted, now)

    def _room(self, req: Request, context_len: int) -> int:
        return draft_room(req, context_len, self.lm.max_context)

    def stats(self) -> dict:
        return self.totals.metrics()


def draft_room(req: Request, context_len: int, max_context: int) -> int:
    """Most draft tokens worth proposing: a step emits up to k+1, within max_new_tokens and the context."""
    left = req.max_new_tokens - req.num_output_tokens - 1
    limit = max_context - context_len - 1 if max_context else left
    return max(0, min(left, limit))
