"""Pure comparisons of two clients' measurements of one server, for scripts/bench_parity.py.

    rows = compare(vllm_results, testbed_summaries)   # per metric: each client's mean over rounds, the ratio
    paired_tpot(vllm_result, testbed_records)       # prompt i against prompt i, same round

vLLM's side is `vllm bench serve --save-result --save-detailed` JSON; testbed's the `openai`
engine's summary keys and request records. Relative differences are testbed / vLLM - 1.
"""
import numpy as np

# (label, vLLM result key, testbed summary key); percentiles p50 = vLLM's median
ROWS = [(f"{m} {s}", f"{'median' if s == 'p50' else s}_{v}_ms", f"{t}_{s}")
        for m, v, t in (("TTFT", "ttft", "ttft_from_send_ms"), ("TPOT", "tpot", "tpot_ms"),
                        ("ITL", "itl", "itl_chunk_ms"), ("E2EL", "e2el", "e2el_from_send_ms"))
        for s in ("mean", "p50", "p99")]
ROWS += [("request throughput /s", "request_throughput", "request_throughput"),
         ("output throughput tok/s", "output_throughput", "output_throughput"),
         ("client queue mean ms", "mean_client_queue_time_ms", "client_queue_ms_mean")]


def _by_prompt(records: list[dict]) -> dict[int, dict]:
    """testbed's finished records by prompt index (item ids are `<prefix>-<i>`: random-3), the index
    of vLLM's per-request lists."""
    return {int(r["item_id"].split("-")[1]): r for r in records if r["status"] == "ok"}


def paired_ttft(vllm: dict, records: list[dict]) -> dict:
    """Per request (prompt i against prompt i): testbed's TTFT from send minus vLLM's TTFT, in ms.
    A request's TTFT swings by up to one decode step with where its arrival falls in the server's
    step, so the p50 of 32 requests moves by milliseconds between passes of the same client; the
    paired median says whether one client reads systematically more or less."""
    ours = _by_prompt(records)
    diff = [(ours[i]["first_token_s"] - ours[i]["send_s"]) * 1e3 - t * 1e3
            for i, t in enumerate(vllm.get("ttfts", [])) if i in ours and t and ours[i].get("send_s") is not None]
    if not diff:
        return {}
    return {"pairs": len(diff), "ttft_diff_ms_p50": round(float(np.median(diff)), 2),
            "testbed_higher": int(np.sum(np.array(diff) > 0))}


def paired_tpot(vllm: dict, records: list[dict]) -> dict:
    """Per request (prompt i against prompt i): testbed TPOT / vLLM TPOT - 1, and testbed's TPOT
    ended at its last chunk (vLLM's latency end) rather than its last token."""
    ours = _by_prompt(records)
    rel, to_chunk = [], []
    for i, (n, itl) in enumerate(zip(vllm.get("output_lens", []), vllm.get("itls", []))):
        r = ours.get(i)
        if r is None or n < 2 or r["output_tokens"] < 2 or not itl:
            continue
        theirs = sum(itl) / (n - 1)
        mine = (r["token_times_s"][-1] - r["first_token_s"]) / (r["output_tokens"] - 1)
        last = (r.get("chunk_times_s") or r["token_times_s"])[-1]
        rel.append(mine / theirs - 1)
        to_chunk.append((last - r["first_token_s"]) / (r["output_tokens"] - 1) / mine - 1)
    if not rel:
        return {}
    return {"pairs": len(rel), "tpot_rel_p50": float(np.median(rel)), "testbed_higher": int(np.sum(np.array(rel) > 0)),
            "to_last_chunk_rel_p50": float(np.median(to_chunk))}


def schedule_gap_ms(vllm: dict, records: list[dict]) -> float | None:
    """Largest difference between the two clients' arrival schedules (each from its first arrival)."""
    if not vllm.get("start_times") or not vllm.get("queue_times"):
        return None
    theirs = np.sort(np.asarray(vllm["start_times"]) - np.asarray(vllm["queue_times"]))
    ours = np.sort([r["arrival_s"] for r in records])
    return float(np.max(np.abs((theirs - theirs[0]) - (ours - ours[0]))) * 1e3)


def rel(ours, theirs) -> float | None:
    return None if ours is None or not theirs else ours / theirs - 1


def _mean(values: list) -> float | None:
    known = [x for x in values if x is not None]
    return float(np.mean(known)) if known else None


def compare(vllm_runs: list[dict], ours_runs: list[dict]) -> list[dict]:
    """Per row: each client's mean over rounds and the relative difference. The per-round lists
    keep a None where a pass lacks the metric, so index k is round k for both clients."""
    rows = []
    for label, vkey, tkey in ROWS:
        v, t = [r.get(vkey) for r in vllm_runs], [r.get(tkey) for r in ours_runs]
        vm, tm = _mean(v), _mean(t)
        rows.append({"metric": label, "vllm": vm, "testbed": tm, "rel": rel(tm, vm),
                     "vllm_rounds": v, "testbed_rounds": t})
    return rows

