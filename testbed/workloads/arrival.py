"""Arrival processes (vLLM-compatible): offline, gamma/Poisson with burstiness, fixed concurrency.

Gaps between requests are Gamma(shape=burstiness, scale=1/(rate*burstiness)): mean 1/rate,
burstiness 1 is a Poisson process, below 1 burstier, above 1 more regular (`vllm bench serve`).
"""
import numpy as np


def arrival_offsets(kind: str, n: int, rate: float | None = None, burstiness: float = 1.0,
                    seed: int = 0) -> list[float] | None:
    """Scheduled send times in seconds from the start, or None for closed-loop concurrency."""
    if kind == "offline":
        return [0.0] * n
    if kind == "poisson":
        rng = np.random.default_rng(seed)
        gaps = rng.gamma(shape=burstiness, scale=1.0 / (rate * burstiness), size=n)
        gaps[0] = 0.0      # the first request goes at once
        return np.cumsum(gaps).tolist()
    if kind == "concurrency":
        return None
    raise ValueError(f"unknown arrival kind {kind!r}")
