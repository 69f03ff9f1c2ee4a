"""The baseline engine: transformers `generate` with static batching.

Requests wait until a batch of `batch_size` is taken; the batch runs to completion (the
longest request sets its length), then the next batch starts. A streamer timestamps every
output token as `generate` hands it to the host, so per-token times cost nothing extra.

With `record_logprobs` set (a cascade's tiers), generate also hands back each step's raw logits
and every emitted token's log-prob is kept on its request, so the cascade's confidence needs no
second forward pass.

KV accounting models the contiguous cache static batching reserves: every row holds the
batch's longest prompt plus max_new_tokens. Slots "hold tokens" only for rows still decoding.
"""
import time
from collections import deque

import torch
from pydantic import Field
from transformers.generation.stopping_criteria import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from testbed.engines.base import ENGINES, Engine, EngineOptions, KVLedger
from testbed.request import Request


class HFOptions(EngineOptions):
    batch_size: int = Field(1, ge=1, le=4096, description="requests per static batch")


class _TokenClock(BaseStreamer):
    """Receives each decoding step's tokens [B] from generate and timestamps them per request."""

    def __init__(self, batch: list[Request]):
        self.batch = batch
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:          # generate first sends the prompt ids [B, S]
            self.prompt_seen = True
            return
        now = time.perf_counter()
        for req, tok in zip(self.batch, value.view(-1).tolist()):
            if not req.done and not req.cancelled:
                req.append_tokens([tok], now)

    def end(self) -> None:
        pass


class _StopCancelled(StoppingCriteria):
    """Ends the rows whose request was cancelled (a client went away); generate stops when all rows end."""

    def __init__(self, batch: list[Request]):
        self.batch = batch

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        return torch.tensor([r.cancelled for r in self.batch], dtype=torch.bool, device=input_ids.device)   # [B]


@ENGINES.register("hf")
class HFEngine(Engine):
    honours = frozenset({"speculative", "routing"})
    Options = HFOptions

    def __init__(self, model, options: HFOptions, sections=None):
        super().__init__(model, options, sections)
        self.waiting: deque[Request] = deque()
        self.kv = KVLedger()
        self.batches = 0
        self.batched_requests = 0
        spec = self.sections.get("speculative")
        self.speculator = spec.build(model) if spec is not None else None   # speculative section -> decoder

    def add_request(self, req: Request) -> None:
        if not self.reject_if_invalid(req):
            self.waiting.append(req)

    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.rejected)

    def abort_request(self, request_id: str) -> Request | None:
        """Drop a waiting (or rejected) request. A running row stops at its next token once `req.cancelled` is set."""
        for req in self.waiting:
            if req.id == request_id:
                self.waiting.remove(req)
                return req
        return self.abort_rejected(request_id)

    def step(self) -> list[Request]:
        done = self.take_rejected()
        batch = self._take_batch()
        if batch:
            self._generate(batch)
            done += batch
        return done

    def _take_batch(self) -> list[Request]:
        """Up to batch_size waiting requests with the first one's sampling settings, in arrival order:
        generate samples every row alike, so a greedy request never rides in a sampled batch."""
        if not self.waiting:
            return []
        first = self.waiting[0].sampling
        batch = [r for r in self.waiting if r.sampling == first][:self.options.batch_size]
        taken = {id(r) for r in batch}
        self.waiting = deque(r for r in self.waiting if id(r) not in taken)
        return batch

    def _generate(self, batch: list[Request]) -> None:
        lm = self.model
        # a request resumed by the server after an engine error continues from the tokens it has
        ids, mask = left_pad([r.prompt_ids + r.output_ids for r in batch], lm.pad_token_id, lm.device)   # [B, S]
        max_new = max(r.max_new_tokens - r.num_output_tokens for r in batch)
        for r in batch:
            r.status = "running"
        if self.speculator is not None:
            self.speculator.run_batch(batch)       # appends tokens with timestamps, rolls back caches
            self._account(batch, ids.shape[1], max_new)
            return
        logits = {"output_logits": True, "return_dict_in_generate": True} if self.record_logprobs else {}
        with torch.inference_mode():
            out = lm.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new,
                                    eos_token_id=list(batch[0].eos_token_ids), pad_token_id=lm.pad_token_id,
                                    streamer=_TokenClock(batch), **sampling_kwargs(batch[0]), **logits,
                                    stopping_criteria=StoppingCriteriaList([_StopCancelled(batch)]))
            if self.record_logprobs:
                _token_logprobs(batch, out.logits)
        for r in batch:
            if not r.done:
                r.finish("length")
        self._account(batch, ids.shape[1], max_new)

    def _account(self, batch: list[Request], padded_len: int, max_new: int) -> None:
        self.batches += 1
        self.batched_requests += len(batch)
        allocated = len(batch) * (padded_len + max_new)
        steps = max(r.num_output_tokens for r in batch)
        for t in range(1, steps + 1):
            used = sum(r.num_prompt_tokens + t for r in batch if r.num_output_tokens >= t)
            self.kv.record(allocated, used)

    def stats(self) -> dict[str, float]:
        out = self.kv.metrics()
        if self.speculator is not None:
            out.update(self.speculator.stats())
        if self.batches:
            out["mean_batch_size"] = self.batched_requests / self.batches
        return out


def _token_logprobs(batch: list[Request], step_logits: tuple[torch.Tensor, ...]) -> None:
    """Each row's emitted tokens' log-probs under the model's raw next-token logits ([B, V] per step)."""
    for i, req in enumerate(batch):
        n = min(req.num_output_tokens, len(step_logits))
        if not n:
            req.token_logprobs = []
            continue
        rows = torch.stack([step_logits[t][i] for t in range(n)]).float()                 # [n, V]
        target = torch.tensor(req.output_ids[:n], dtype=torch.long, device=rows.device)[:, None]
        req.token_logprobs = torch.log_softmax(rows, dim=-1).gather(-1, target)[:, 0].tolist()


def left_pad(seqs: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token lists into ids [B, S] and attention mask [B, S] (decoder-only models pad left)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, width - len(s):] = torch.tensor(s, dtype=torch.long)
        mask[i, width - len(s):] = 1
    return ids.to(device), mask.to(device)


def sampling_kwargs(req: Request) -> dict:
    """generate() kwargs for a request's sampling params; seeds torch's RNG for sampled runs."""
    sp = req.sampling
    if sp.greedy:
        return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    if sp.seed is not None:
        torch.manual_seed(sp.seed)
    return {"do_sample": True, "temperature": sp.temperature, "top_p": sp.top_p, "top_k": sp.top_k or None}
