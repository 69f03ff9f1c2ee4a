"""Per-request TPOT, pass against pass, from a `scripts/bench_parity.py` output directory.

    python scripts/parity_pairs.py results/parity-<UTC>     # or a copy under docs/parity/

Both clients send the same prompts on the same schedule, so request i of one pass and request i of
another met the same server load: their TPOT ratio has no sampling noise of prompts or arrivals.
Pairing a client with itself (vLLM round 0 against round 1) gives the pass-to-pass noise floor that
a testbed-vs-vLLM difference must exceed before it says anything about the clients.
Reads vLLM's `--save-detailed` JSONs (`vllm-*-r<k>.json`) and testbed's `*/requests.jsonl` (or
`testbed-r<k>-requests.jsonl`), in the order they ran; prints one line per pair, then JSON.
"""
import json
import sys
from itertools import combinations
from pathlib import Path

import numpy as np


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


def passes(d: Path) -> dict[str, np.ndarray]:
    found = {f"vllm r{p.stem.rsplit('-r', 1)[1]}": (p.stat().st_mtime, vllm_tpot(p)) for p in d.glob("vllm-*-r*.json")}
    tb = sorted(d.glob("parity-client-*/requests.jsonl")) or sorted(d.glob("testbed-r*-requests.jsonl"))
    found.update({f"testbed r{i}": (p.stat().st_mtime, testbed_tpot(p)) for i, p in enumerate(tb)})
    return {k: v for k, (_, v) in sorted(found.items(), key=lambda kv: kv[0])}


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
    print(json.dumps({"dir": str(d), "pairs": rows}))


if __name__ == "__main__":
    main()
