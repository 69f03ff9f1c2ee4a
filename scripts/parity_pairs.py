"""Per-request TPOT, pass against pass, from a `scripts/bench_parity.py` output directory.

    python scripts/parity_pairs.py results/parity-<UTC>     # or a copy under docs/parity/

Both clients send the same prompts on the same schedule, so request i of one pass and request i of
another met the same server load: their TPOT ratio has no sampling noise of prompts or arrivals.
Pairing a client with itself (vLLM round 0 against round 1) gives the pass-to-pass noise floor that
a testbed-vs-vLLM difference must exceed before it says anything about the clients.
Reads vLLM's `--save-detailed` JSONs (`vllm-*-r<k>.json`) and testbed's `*/requests.jsonl` (or
`testbed-r<k>-requests.jsonl`), in the order they ran; prints one line per pair, then JSON.
Then, per round, the TTFT tail of the two clients' passes: a p99 of 32 requests is the largest
value plus 0.69 of the gap to it from the second largest, so it rests on one or two requests;
printed are p90 and p99 with their bootstrap standard deviation over requests, and each client's
three slowest prompts with the other client's TTFT for the same prompt.
Last, against vLLM's server (its engine clock in parity.json's passes): per round, the clients'
TTFT and TPOT p50 ratio (testbed / vLLM - 1) beside the same ratio of the server's own mean
TTFT and TPOT in those two passes, and their difference, mean [95% t] over rounds. The server's
speed moves from pass to pass; the difference is what is left for the clients.
"""
import json
import sys
from itertools import combinations
from pathlib import Path

import numpy as np
from scipy import stats


def vllm_tpot(path: Path) -> np.ndarray:
    v = json.loads(path.read_text())
    return np.array([sum(itl) / (n - 1) if n > 1 and itl else np.nan for n, itl in zip(v["output_lens"], v["itls"])])


def testbed_tpot(path: Path) -> np.ndarray:
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    out = np.full(len(recs), np.nan)
    for r in recs:
        if r["status"] == "ok" and r["output_tokens"] > 1:
            out[int(r["item_id"].split("-")[1])] = (r["token_times_s"][-1] - r["first_token_s"]) / (r["output_tokens"] - 1)
    return out


def vllm_ttft(path: Path) -> np.ndarray:
    return np.array([t * 1e3 if t else np.nan for t in json.loads(path.read_text())["ttfts"]])


def testbed_ttft(path: Path) -> np.ndarray:
    """TTFT from send in ms (vLLM's start), per prompt index."""
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    out = np.full(len(recs), np.nan)
    for r in recs:
        if r["status"] == "ok" and r.get("send_s") is not None:
            out[int(r["item_id"].split("-")[1])] = (r["first_token_s"] - r["send_s"]) * 1e3
    return out


def passes(d: Path, vllm_of=vllm_tpot, testbed_of=testbed_tpot) -> dict[str, np.ndarray]:
    found = {f"vllm r{p.stem.rsplit('-r', 1)[1]}": vllm_of(p) for p in d.glob("vllm-*-r*.json")}
    tb = sorted(d.glob("parity-client-*/requests.jsonl")) or sorted(d.glob("testbed-r*-requests.jsonl"))
    found.update({f"testbed r{i}": testbed_of(p) for i, p in enumerate(tb)})
    return dict(sorted(found.items()))


def tail(x: np.ndarray, other: np.ndarray, rng) -> dict:
    """p90, p99 and their bootstrap SD over requests; the three slowest prompts (i, ms, other client's ms)."""
    ok = x[~np.isnan(x)]                                     # failed requests have no TTFT
    boot = np.percentile(rng.choice(ok, size=(2000, ok.size)), [90, 99], axis=1)    # [2, n_resamples]
    top = np.argsort(np.nan_to_num(x, nan=-np.inf))[-3:][::-1]
    return {"p90": float(np.percentile(ok, 90)), "p99": float(np.percentile(ok, 99)),
            "p90_sd": float(boot[0].std()), "p99_sd": float(boot[1].std()),
            "slowest": [(int(i), round(float(x[i]), 1), round(float(other[i]), 1)) for i in top]}


def ttft_tails(d: Path) -> list[dict]:
    ttft, rng, rows = passes(d, vllm_ttft, testbed_ttft), np.random.default_rng(0), []
    for k in sorted({int(name.split("r")[-1]) for name in ttft}):
        v, t = ttft.get(f"vllm r{k}"), ttft.get(f"testbed r{k}")
        if v is None or t is None:
            continue
        rows.append({"round": k, "vllm": tail(v, t, rng), "testbed": tail(t, v, rng)})
        for c in ("vllm", "testbed"):
            a = rows[-1][c]
            print(f"r{k} {c:<8} TTFT p90 {a['p90']:6.1f} (sd {a['p90_sd']:4.1f})  p99 {a['p99']:6.1f} "
                  f"(sd {a['p99_sd']:4.1f})  slowest (prompt, ms, other client's ms) {a['slowest']}")
    return rows


def mean_ci(x: list[float]) -> str:
    m, h = np.mean(x), stats.t.ppf(0.975, len(x) - 1) * np.std(x, ddof=1) / np.sqrt(len(x))
    return f"{m:+.1%} [{m - h:+.1%}, {m + h:+.1%}]"


def server_clock(d: Path) -> dict:
    """Client ratio, server-clock ratio and their difference per round (vLLM's server only)."""
    run = json.loads((d / "parity.json").read_text())["servers"][0]
    if run["server"] != "vllm" or len(run["passes"]) < 4:
        return {}
    rows = {r["metric"]: r for r in run["rows"]}
    clock = {(p["round"], p["client"]): p for p in run["passes"]}
    out = {}
    for metric, key in (("TTFT p50", "server_ttft_ms_mean"), ("TPOT p50", "server_tpot_ms_mean")):
        rounds = range(len(rows[metric]["vllm_rounds"]))
        client = [rows[metric]["testbed_rounds"][k] / rows[metric]["vllm_rounds"][k] - 1 for k in rounds]
        server = [clock[(k, "testbed")][key] / clock[(k, "vllm")][key] - 1 for k in rounds]
        left = [c - s for c, s in zip(client, server)]
        print(f"{metric}: clients {mean_ci(client)}  server clock {mean_ci(server)}  clients - server {mean_ci(left)}")
        out[metric] = {"client_rel": client, "server_clock_rel": server, "difference": left}
    return out


def main() -> None:
    d = Path(sys.argv[1])
    rows = []
    for (a, ta), (b, tb) in combinations(passes(d).items(), 2):
        rel = ta / tb - 1
        rel = rel[~np.isnan(rel)]
        rows.append({"pair": f"{a} / {b}", "n": int(rel.size), "median_rel": float(np.median(rel)),
                     "a_higher": int((rel > 0).sum()), "a_tpot_p50_ms": float(np.nanmedian(ta) * 1e3),
                     "b_tpot_p50_ms": float(np.nanmedian(tb) * 1e3)})
        r = rows[-1]
        print(f"{r['pair']:<24} per-request median {r['median_rel'] * 100:+6.1f}%  higher {r['a_higher']:>2}/{r['n']}"
              f"   TPOT p50 {r['a_tpot_p50_ms']:.2f} vs {r['b_tpot_p50_ms']:.2f} ms")
    tails = ttft_tails(d)
    print(json.dumps({"dir": str(d), "pairs": rows, "ttft_tails": tails, "server_clock": server_clock(d)}))


if __name__ == "__main__":
    main()
