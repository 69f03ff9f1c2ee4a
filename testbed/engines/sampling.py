"""Token sampling shared by the engines: greedy, or seeded temperature / top-k / top-p.

    next_ids = sample(logits, [req.sampling for req in batch], generators)   # logits [N, V] -> [N]

The filters run in transformers' order (temperature, then top-k, then top-p), so a sampled
arm means the same thing in every engine. Each request draws from its own torch.Generator,
seeded from `SamplingParams.seed`, so a request's tokens do not depend on its batch-mates.
"""
import torch

from testbed.request import SamplingParams


def make_generator(params: SamplingParams, device: torch.device | str = "cpu") -> torch.Generator | None:
    """A per-request RNG for sampled requests (None for greedy or unseeded ones)."""
    if params.greedy or params.seed is None:
        return None
    return torch.Generator(device=device).manual_seed(params.seed)


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits of a [V] row; k <= 0 keeps all."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k).values[-1]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of tokens whose probability reaches p (always at least one)."""
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, descending=True)
    cum = sorted_logits.softmax(-1).cumsum(-1)
    drop = cum - sorted_logits.softmax(-1) >= p          # tokens entirely beyond the nucleus
    return logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))


def sample_one(logits: torch.Tensor, params: SamplingParams, gen: torch.Generator | None) -> int:
    """One token from a [V] row of logits."""
    if params.greedy:
        return int(torch.argmax(logits))
    row = top_p_filter(top_k_filter(logits.float() / params.temperature, params.top_k), params.top_p)
    return int(torch.multinomial(row.softmax(-1), 1, generator=gen))


def sample(logits: torch.Tensor, params: list[SamplingParams],
           generators: list[torch.Generator | None] | None = None) -> list[int]:
    """Next token per row of logits [N, V]; greedy rows take one batched argmax."""
    gens = generators or [None] * len(params)
    if all(p.greedy for p in params):
        return torch.argmax(logits, dim=-1).tolist()
    return [sample_one(row, p, g) for row, p, g in zip(logits, params, gens)]
