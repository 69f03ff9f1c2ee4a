"""A transformers model's forward over a DynamicCache that is cropped back after speculation.

    cache = new_cache(model)
    logits = forward(model, prompt_ids, cache, keep=1)       # [1, V]: the next-token logits
    rollback(cache, len(prompt_ids) - 1)                    # drop what a rejected draft left

Used wherever a model decodes outside `generate` with a contiguous cache: the hf engine's
speculative decoder, draft models, and the draft-cost check.
"""
import inspect
from functools import lru_cache

import torch
from transformers import DynamicCache


@lru_cache(maxsize=None)
def cache_kwarg(model_cls: type) -> str:
    """The keyword a model's forward takes its KV cache by: transformers 5.x renamed `past_key_values`
    to `cache` (5.17 has the old name, 5.24 the new one and a deprecation). An unknown keyword would
    vanish into **kwargs and every step would run without its context, so ask the signature."""
    return "cache" if "cache" in inspect.signature(model_cls.forward).parameters else "past_key_values"


def forward(model, ids: list[int], cache: DynamicCache, keep: int) -> torch.Tensor:
    """Feed `ids` after what `cache` holds; logits of the last `keep` positions [keep, V] (float32)."""
    x = torch.tensor([ids], device=model.device)                           # [1, S]
    out = model(input_ids=x, **{cache_kwarg(type(model)): cache}, use_cache=True, logits_to_keep=keep)
    return out.logits[0].float()                                            # [keep, V]


def rollback(cache: DynamicCache, length: int) -> None:
    """Crop the cache to its first `length` positions (a no-op when it holds no more)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


def new_cache(model) -> DynamicCache:
    return DynamicCache(config=model.config)
