"""Token sampling shared by the engines: greedy, or seeded temperature / top-k / top-p.

    next_ids = sample(logits, [req.sampling for req in batch], generators)   # logits [N, V] -> [N]

The filters run in transformers' order (temperature, then top-k, then top-p), so a sampled
arm means the same thing in every engine. Each request draws from its own torch.Generator,
seeded from `SamplingParams.seed`, so a request's tokens do not depend on its batch-mates.
Speculative verification (testbed/speculative/verify.py) draws with these same functions.
"""
import torch

from testbed.request import SamplingParams


def make_generator(params: SamplingParams, device: torch.device | str = "cpu") -> torch.Generator | None:
    """A per-request RNG for sampled requests (None for greedy ones, and for unseeded ones: those draw
    from torch's global RNG), the same in every engine and in speculative verification."""
    if params.greedy or params.seed is None:
        return None
    return torch.Generator(device=device).manual_seed(params.seed)


def logits_to_probs(logits: torch.Tensor, sp: SamplingParams) -> torch.Tensor:
    """Temperature, then top-k, then top-p (generate's order), then softmax. logits [..., V] -> probs [..., V]."""
    logits = logits.float() / sp.temperature
    if sp.top_k and sp.top_k < logits.shape[-1]:
        kth = torch.topk(logits, sp.top_k, dim=-1).values[..., -1:]            # [..., 1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if sp.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        sorted_probs = sorted_logits.softmax(-1)
        above = (sorted_probs.cumsum(-1) - sorted_probs) >= sp.top_p          # mass before this token already >= top_p
        logits = logits.masked_fill(above.scatter(-1, order, above), float("-inf"))
    return logits.softmax(-1)


def draw(probs: torch.Tensor, gen: torch.Generator | None) -> int:
    """One token id from probs [V]."""
    return int(torch.multinomial(probs, 1, generator=gen).item())


def sample_one(logits: torch.Tensor, params: SamplingParams, gen: torch.Generator | None) -> int:
    """One token from a [V] row of logits: the argmax when greedy, else a draw from the filtered softmax."""
    if params.greedy:
        return int(torch.argmax(logits))
    return draw(logits_to_probs(logits, params), gen)


def sample(logits: torch.Tensor, params: list[SamplingParams],
           generators: list[torch.Generator | None] | None = None) -> list[int]:
    """Next token per row of logits [N, V]; greedy rows take one batched argmax."""
    gens = generators or [None] * len(params)
    if all(p.greedy for p in params):
        return torch.argmax(logits, dim=-1).tolist()
    return [sample_one(row, p, g) for row, p, g in zip(logits, params, gens)]
