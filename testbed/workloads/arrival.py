"""Arrival processes (vLLM-compatible): offline, gamma/Poisson with burstiness, fixed concurrency.

Gaps between requests are Gamma(shape=burstiness, scale=1/(rate*burstiness)): mean 1/rate,
burstiness 1 is a Poisson process, below 1 burstier, above 1 more regular. As `vllm bench serve`
does (vllm/benchmarks/serve.py, get_request): every request, the first included, waits one gap;
the cumulative times are then rescaled so the last request goes at exactly n/rate, which keeps
the offered rate equal to `rate` for any seed; burstiness inf gives constant gaps of 1/rate. The
gaps come from numpy's legacy generator seeded with `seed`, the stream `np.random.seed(seed)`
gives vLLM's client, so with the same seed both send on the same schedule (the parity script
checks this against the start and queue times in vLLM's result file).
"""
import math

import numpy as np


def arrival_offsets(kind: str, n: int, rate: float | None = None, burstiness: float = 1.0,
                    seed: int = 0) -> list[float] | None:
    """Scheduled send times in seconds from the start, or None for closed-loop concurrency."""
    if kind == "offline" or (kind == "poisson" and math.isinf(rate)):
        return [0.0] * n
    if kind == "poisson":
        return poisson_offsets(n, rate, burstiness, seed)
    if kind == "concurrency":
        return None
    raise ValueError(f"unknown arrival kind {kind!r}")


def poisson_offsets(n: int, rate: float, burstiness: float = 1.0, seed: int = 0) -> list[float]:
    if math.isinf(burstiness):
        gaps = np.full(n, 1.0 / rate)
    else:
        gaps = np.random.RandomState(seed).gamma(shape=burstiness, scale=1.0 / (rate * burstiness), size=n)
    times = np.cumsum(gaps)
    if n and times[-1] > 0:
        times *= (n / rate) / times[-1]       # vLLM's rescale: the last send at exactly n / rate
    return times.tolist()
