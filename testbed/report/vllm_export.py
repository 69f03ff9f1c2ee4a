"""A run directory as `vllm bench serve --save-result --save-detailed` files: one per arm, repeat and rate.

    python -m testbed export results/paged-<UTC> --format vllm
    # -> results/paged-<UTC>/vllm/<arm>[-r<repeat>][-q<rate>].json, and vllm/summary.json (all of them,
    #    as a list: the file `vllm bench sweep plot` reads)

Same keys, units and per-request arrays as vLLM 0.32's result JSON (VLLM_KEYS; seconds in the
arrays, milliseconds in the statistics, `request_rate` "inf" when all are sent at once), computed
with vLLM's client definitions: TTFT, E2EL and start times from send, ITL per streamed chunk
(docs/metrics.md), numpy mean/median/std/percentiles. In process, a request is sent when it
arrives. testbed's own figures (quality, cost, match against the baseline, arrival-based TTFT,
per-token ITL, the run's incompleteness) go under the extra key "testbed"; a run that was
interrupted is also marked at the top level (`"incomplete": true`), so it is never read as whole.
"""
import json
from datetime import datetime
from pathlib import Path

import numpy as np

from testbed.errors import UserError
from testbed.metrics import latency
from testbed.report.compare import read_records
from testbed.report.run_files import check_counts, load_run_config, load_summary, records_file, summary_file

# the keys of vLLM's result (serve.py main_async + benchmark, --save-detailed, percentiles "99");
# tests/test_vllm_export.py pins them against vLLM's code where vllm is installed
VLLM_KEYS = ("date", "endpoint_type", "backend", "label", "model_id", "tokenizer_id", "num_prompts",
             "request_rate", "burstiness", "max_concurrency", "duration", "completed", "failed",
             "total_input_tokens", "total_output_tokens", "request_throughput", "request_goodput",
             "output_throughput", "total_token_throughput", "input_lens", "output_lens", "ttfts", "itls",
             "latencies", "start_times", "queue_times", "generated_texts", "errors", "max_output_tokens_per_s",
             "max_concurrent_requests", "rtfx") + tuple(
    f"{s}_{m}_ms" for m in ("ttft", "tpot", "itl", "e2el") for s in ("mean", "median", "std", "p99"))
QUEUE_KEYS = tuple(f"{s}_client_queue_time_ms" for s in ("mean", "median", "std", "p99"))


def stats_ms(name: str, seconds: list[float]) -> dict:
    """vLLM's mean/median/std/p99 in ms; like vLLM, an empty list gives zeros."""
    arr = np.asarray(seconds or [0.0], dtype=float) * 1000.0
    return {f"mean_{name}_ms": float(arr.mean()), f"median_{name}_ms": float(np.median(arr)),
            f"std_{name}_ms": float(arr.std()), f"p99_{name}_ms": float(np.percentile(arr, 99))}


def _send(rec: dict) -> float:
    return rec["send_s"] if rec.get("send_s") is not None else rec["arrival_s"]


def per_request(records: list[dict]) -> dict:
    """vLLM's per-request arrays (seconds), in request order; failed requests as vLLM leaves them (zeros, text "")."""
    ok = [latency.is_ok(r) for r in records]
    chunks = [latency.chunk_times_s(r) if k else [] for r, k in zip(records, ok)]
    return {"input_lens": [r.get("prompt_tokens") or 0 for r in records],
            "output_lens": [r.get("output_tokens") or 0 if k else 0 for r, k in zip(records, ok)],
            "ttfts": [c[0] - _send(r) if c else 0.0 for r, c in zip(records, chunks)],
            "itls": [np.diff(c).tolist() for c in chunks],
            "latencies": [c[-1] - _send(r) if c else 0.0 for r, c in zip(records, chunks)],
            "start_times": [_send(r) for r in records],
            "queue_times": [_send(r) - r["arrival_s"] for r in records],
            "generated_texts": [r.get("output_text") or "" if k else "" for r, k in zip(records, ok)],
            "errors": ["" if k else (r.get("error") or "failed") for r, k in zip(records, ok)]}


def peaks(records: list[dict]) -> tuple[float, int]:
    """vLLM's max_output_tokens_per_s and max_concurrent_requests: per 1-second bucket of ok requests."""
    ok = [r for r in records if latency.is_ok(r) and r.get("token_times_s")]
    if not ok:
        return 0.0, 0
    t0 = min(_send(r) for r in ok)
    n = int(np.ceil(max(r["token_times_s"][-1] for r in ok) - t0)) + 1
    tokens, live = np.zeros(n), np.zeros(n)
    for r in ok:
        for t in r["token_times_s"]:
            tokens[min(int(t - t0), n - 1)] += 1
        live[int(_send(r) - t0):int(r["token_times_s"][-1] - t0) + 1] += 1
    return float(tokens.max()), int(live.max())


def result(records: list[dict], wall_s: float, cfg: dict, arm: str, rate: str | None, extra: dict) -> dict:
    """One vLLM result dict for one arm's pass (its records in request order)."""
    arm_cfg, arrival = cfg["arms"][arm], (cfg.get("workload") or {}).get("arrival") or {}
    ok = [r for r in records if latency.is_ok(r)]
    arrays = per_request(records)
    chunk_itls = [g for r in ok for g in np.diff(latency.chunk_times_s(r)).tolist()]
    tpots = [t / 1000.0 for t in map(latency.tpot_ms, ok) if t is not None]
    out_tokens = sum(r.get("output_tokens") or 0 for r in ok)
    in_tokens = sum(r.get("prompt_tokens") or 0 for r in ok)
    limit = arm_cfg.get("concurrency") if arm_cfg.get("engine") == "openai" else None
    limit = arrival.get("n") if arrival.get("kind") == "concurrency" else arrival.get("max_concurrency", limit)
    peak_tok, peak_live = peaks(records)
    model = (arm_cfg.get("model") or cfg.get("model") or {}).get("id")
    out = {"date": datetime.now().strftime("%Y%m%d-%H%M%S"), "endpoint_type": f"testbed-{arm_cfg.get('engine', 'hf')}",
           "backend": f"testbed-{arm_cfg.get('engine', 'hf')}", "label": arm, "model_id": model, "tokenizer_id": model,
           "num_prompts": len(records), "request_rate": _rate(arrival) if rate is None else (rate if rate == "inf" else float(rate)),
           "burstiness": arrival.get("burstiness", 1.0), "max_concurrency": limit, "duration": wall_s,
           "completed": len(ok), "failed": len(records) - len(ok), "total_input_tokens": in_tokens,
           "total_output_tokens": out_tokens, "request_throughput": len(ok) / wall_s,
           "request_goodput": extra.get("goodput"), "output_throughput": out_tokens / wall_s,
           "total_token_throughput": (in_tokens + out_tokens) / wall_s, **arrays,
           "max_output_tokens_per_s": peak_tok, "max_concurrent_requests": peak_live, "rtfx": 0.0}
    out.update(stats_ms("ttft", [t for t, k in zip(arrays["ttfts"], records) if latency.is_ok(k)]))
    out.update(stats_ms("tpot", tpots))
    out.update(stats_ms("itl", chunk_itls))
    out.update(stats_ms("e2el", [t for t, k in zip(arrays["latencies"], records) if latency.is_ok(k)]))
    if limit is not None:
        out.update(stats_ms("client_queue_time", [q for q, k in zip(arrays["queue_times"], records)
                                                  if latency.is_ok(k)]))
    return out


def _rate(arrival: dict):
    return arrival["rate"] if arrival.get("kind") == "poisson" else "inf"


def testbed_extra(metrics: dict, incomplete: bool, run_dir: Path, repeat: int) -> dict:
    """testbed's figures that vLLM's result has no key for."""
    keep = ("quality_", "cost_", "match_rate", "ttft_ms_", "itl_ms_", "e2el_ms_", "goodput", "peak_memory_mb",
            "kv_", "spec_")
    return {"incomplete": incomplete, "run_dir": str(run_dir), "repeat": repeat,
            **{k: v for k, v in metrics.items() if k.startswith(keep) and not k.endswith("_vs_baseline")}}


def export_vllm(run_dir: str | Path) -> list[Path]:
    """Write run_dir/vllm/*.json (one per arm, repeat and rate) and vllm/summary.json; return the paths."""
    run_dir = Path(run_dir)
    summary_path = summary_file(run_dir)        # each a UserError where a directory sits in the file's place
    if not (run_dir / "config.yaml").is_file() or not records_file(run_dir):
        raise UserError(f"RUN_DIR {run_dir}: not a run directory (needs config.yaml and requests.jsonl)",
                        "give a directory written by `python -m testbed run`, e.g. results/<name>-<UTC>")
    cfg = load_run_config(run_dir / "config.yaml")
    summary = load_summary(summary_path) if summary_path else {"incomplete": True, "arms": {}}
    records = read_records(run_dir)
    check_counts(run_dir / "requests.jsonl", summary, records)     # a torn, doubled or emptied arm: wrong figures
    incomplete = bool(summary.get("incomplete", True)) or not summary.get("runs")
    from testbed.metrics.summary import summarize_arm
    out_dir = run_dir / "vllm"
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: a file where the export's directory goes", "move it aside and export again")
    out_dir.mkdir(exist_ok=True)
    paths, everything = [], []
    for run in passes(run_dir, summary.get("runs") or [], records, cfg):
        mine, wall = run["records"], run["wall_s"]
        metrics = summarize_arm(mine, wall, usd_per_hour=(cfg.get("cost") or {}).get("usd_per_hour", 0.0))
        res = result(mine, wall, cfg, run["arm"], run["rate"], metrics)
        res["testbed"] = testbed_extra(metrics, incomplete, run_dir, run["repeat"])
        if incomplete:
            res["incomplete"] = True
        name = run["arm"] + (f"-r{run['repeat']}" if cfg.get("repeats", 1) > 1 else "") + \
            (f"-q{run['rate']}" if run["rate"] is not None else "")
        paths.append(out_dir / f"{name}.json")
        paths[-1].write_text(json.dumps(res))
        everything.append(res)
    (out_dir / "summary.json").write_text(json.dumps(everything))
    return paths + [out_dir / "summary.json"]


def _key(rec: dict) -> tuple:
    return rec["arm"], rec.get("repeat", 0), rec.get("rate")


def passes(run_dir: Path, runs: list[dict], records: list[dict], cfg: dict) -> list[dict]:
    """One pass per (arm, repeat, rate), in run order: its wall time the summary's, summed over the blocks it was
    cut into (without a summary, its blocks' spans), and its records with each block's times moved past the
    blocks before it, as if they ran back to back (a record's times count from its block's start). The records
    are those the summary counted (export_vllm checks them first: run_files.check_counts)."""
    walls: dict[tuple, float] = {}
    for run in runs:
        key = (run["arm"], run["repeat"], run["rate"])
        walls[key] = walls.get(key, 0.0) + run["wall_s"]
    out = []
    for key in walls or dict.fromkeys(map(_key, records)):
        if not isinstance((cfg.get("arms") or {}).get(key[0]), dict):
            raise UserError(f"{run_dir}: arm {key[0]!r} ran but config.yaml has no such arm",
                            "restore config.yaml or requests.jsonl from the run, or re-run the experiment")
        mine, span = _laid_end_to_end([r for r in records if _key(r) == key])
        out.append({"arm": key[0], "repeat": key[1], "rate": key[2], "records": mine,
                    "wall_s": walls.get(key) or max(span, 1e-9)})
    return out


TIME_KEYS = ("arrival_s", "send_s", "first_token_s", "finish_s")


def _laid_end_to_end(records: list[dict]) -> tuple[list[dict], float]:
    """The records with each block's times shifted by the spans of the blocks before it (in file order, the
    order they ran), and the total span."""
    out, offset = [], 0.0
    for block in dict.fromkeys(r.get("block") for r in records):
        rows = [r for r in records if r.get("block") == block]
        out += [_shifted(r, offset) for r in rows]
        offset += max(_end(r) for r in rows)
    return out, offset


def _end(rec: dict) -> float:
    return max([rec["arrival_s"], rec.get("finish_s") or 0.0, *(rec.get("token_times_s") or [])])


def _shifted(rec: dict, dt: float) -> dict:
    if not dt:
        return rec
    out = {**rec, **{k: rec[k] + dt for k in TIME_KEYS if rec.get(k) is not None}}
    for k in ("token_times_s", "chunk_times_s"):
        if rec.get(k):
            out[k] = [t + dt for t in rec[k]]
    return out
