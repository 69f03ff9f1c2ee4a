"""Latency metrics on per-request records, following vLLM's `vllm bench serve` definitions (DESIGN §4).

Times in a record are seconds from the arm's start; `arrival_s` is the scheduled send time.

    ttft_ms(rec)   first token - arrival
    e2el_ms(rec)   last token - arrival
    tpot_ms(rec)   (e2el - ttft) / (output_tokens - 1), None for outputs of one token or none
    itl_ms(rec)    gaps between consecutive tokens (zero inside a speculative step)

Beside them, the definitions of vLLM's client (docs/metrics.md says where and why they differ):

    ttft_from_send_ms(rec)   first token - send (`send_s`: when an HTTP client sent it, after its queue)
    client_queue_ms(rec)     send - arrival: waiting in the client for a concurrency slot
    e2el_from_send_ms(rec)   last token - send
    itl_chunk_ms(rec)        gaps between streamed chunks (`chunk_times_s`); in process, between
                             engine steps that emitted tokens (equal token times are one chunk)

The *_from_send and client_queue values exist only where a client sent the request (the
openai engine); in process there is no client queue, and they are absent.
Only requests with status "ok" enter latency statistics.
"""
from typing import Iterable

import numpy as np

PERCENTILES = (50, 90, 99)


def is_ok(rec: dict) -> bool:
    return rec.get("status") == "ok"


def _first_token_s(rec: dict) -> float | None:
    if rec.get("first_token_s") is not None:
        return rec["first_token_s"]
    times = rec.get("token_times_s") or []
    return times[0] if times else None


def _last_token_s(rec: dict) -> float | None:
    times = rec.get("token_times_s") or []
    return times[-1] if times else rec.get("finish_s")


def ttft_ms(rec: dict) -> float | None:
    first = _first_token_s(rec)
    return None if first is None else (first - rec["arrival_s"]) * 1000.0


def e2el_ms(rec: dict) -> float | None:
    last = _last_token_s(rec)
    return None if last is None else (last - rec["arrival_s"]) * 1000.0


def tpot_ms(rec: dict) -> float | None:
    n = rec.get("output_tokens", len(rec.get("token_times_s") or []))
    ttft, e2el = ttft_ms(rec), e2el_ms(rec)
    if n < 2 or ttft is None or e2el is None:
        return None
    return (e2el - ttft) / (n - 1)


def itl_ms(rec: dict) -> list[float]:
    times = rec.get("token_times_s") or []
    return (np.diff(np.asarray(times, dtype=float)) * 1000.0).tolist()


def _from_send(rec: dict, t: float | None) -> float | None:
    send = rec.get("send_s")
    return None if send is None or t is None else (t - send) * 1000.0


def ttft_from_send_ms(rec: dict) -> float | None:
    return _from_send(rec, _first_token_s(rec))


def e2el_from_send_ms(rec: dict) -> float | None:
    return _from_send(rec, _last_token_s(rec))


def client_queue_ms(rec: dict) -> float | None:
    send = rec.get("send_s")
    return None if send is None else (send - rec["arrival_s"]) * 1000.0


def chunk_times_s(rec: dict) -> list[float]:
    """When each streamed chunk arrived; in process, each distinct token time (one engine step)."""
    if rec.get("chunk_times_s"):
        return rec["chunk_times_s"]
    times = rec.get("token_times_s") or []
    return [t for i, t in enumerate(times) if i == 0 or t != times[i - 1]]


def itl_chunk_ms(rec: dict) -> list[float]:
    return (np.diff(np.asarray(chunk_times_s(rec), dtype=float)) * 1000.0).tolist()


def latency_values(records: Iterable[dict]) -> dict[str, list[float]]:
    """Raw values behind every latency percentile, over ok requests; ITL gaps pooled across requests."""
    ok = [r for r in records if is_ok(r)]
    out = {"ttft_ms": [ttft_ms(r) for r in ok], "tpot_ms": [tpot_ms(r) for r in ok],
           "e2el_ms": [e2el_ms(r) for r in ok], "itl_ms": [g for r in ok for g in itl_ms(r)],
           "ttft_from_send_ms": [ttft_from_send_ms(r) for r in ok], "client_queue_ms": [client_queue_ms(r) for r in ok],
           "e2el_from_send_ms": [e2el_from_send_ms(r) for r in ok], "itl_chunk_ms": [g for r in ok for g in itl_chunk_ms(r)]}
    return {k: [v for v in vals if v is not None] for k, vals in out.items()}


def percentiles(values: Iterable[float]) -> dict[str, float]:
    """{"mean", "p50", "p90", "p99"} with numpy's default (linear) interpolation; {} for no values."""
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0:
        return {}
    out = {"mean": float(arr.mean())}
    out.update({f"p{p}": float(v) for p, v in zip(PERCENTILES, np.percentile(arr, PERCENTILES))})
    return out


def meets_slo(rec: dict, slo) -> bool:
    """Every configured SLO (ttft_ms / tpot_ms / e2el_ms) is met; a 1-token output has no TPOT to miss."""
    if not is_ok(rec):
        return False
    for name, fn in (("ttft_ms", ttft_ms), ("tpot_ms", tpot_ms), ("e2el_ms", e2el_ms)):
        limit = getattr(slo, name, None)
        value = fn(rec)
        if limit is not None and value is not None and value > limit:
            return False
    return True


def slo_configured(slo) -> bool:
    return slo is not None and any(getattr(slo, k, None) is not None for k in ("ttft_ms", "tpot_ms", "e2el_ms"))


def goodput(records: Iterable[dict], slo, wall_s: float) -> float | None:
    """Requests per second that met every configured SLO; None when no SLO is set or no time passed."""
    if not slo_configured(slo) or wall_s <= 0:
        return None
    return sum(meets_slo(r, slo) for r in records) / wall_s
