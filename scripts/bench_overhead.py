"""Harness overhead: the hf engine through `testbed run` vs a bare `model.generate` loop.

Regime: batch 1, greedy, the same golden prompts and max_new_tokens, SmolLM2-135M on this
machine's CPU (float32). Both paths run in this one process, alternating, so drift and
contention hit both alike. The harness path is the full `Experiment` (tokenise on arrival,
engine, scoring, a record appended and fsynced per request, summary and report); its output
tok/s is taken from its own summary, the bare loop's from its wall clock.

    python scripts/bench_overhead.py --limit 12 --max-new-tokens 32 --rounds 2

Prints a card, then one line of JSON. Goal: harness within 5% of bare generate.
"""
import argparse
import json
import tempfile
import time

import torch

from testbed.config import validate
from testbed.plugins import load_plugins
from testbed.runner import Experiment


def config(model_id: str, limit: int, max_new: int) -> dict:
    return {"name": "overhead", "model": {"id": model_id}, "device": "cpu",
            "workload": {"dataset": "golden", "limit": limit, "max_new_tokens": max_new, "warmup": 1},
            "baseline": "hf", "arms": {"hf": {"engine": "hf", "batch_size": 1}}}


def bare_generate(lm, requests) -> tuple[int, float]:
    """Greedy generate per prompt, no harness: (output tokens, seconds)."""
    tokens, t0 = 0, time.perf_counter()
    with torch.inference_mode():
        for r in requests:
            ids = torch.tensor([r.prompt_ids])
            out = lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=r.max_new_tokens,
                                    do_sample=False, eos_token_id=list(lm.eos_token_ids),
                                    pad_token_id=lm.pad_token_id)
            new = out[0, ids.shape[1]:].tolist()
            stop = next((i + 1 for i, t in enumerate(new) if t in lm.eos_token_ids), len(new))
            tokens += stop
    return tokens, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--limit", type=int, default=12)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    load_plugins()      # engines and sections registered before the config is validated
    cfg = validate(config(a.model, a.limit, a.max_new_tokens))
    exp = Experiment(cfg, progress=False)
    plan = exp.plans["hf"]
    requests = [plan.make_request(it, 0.0) for it in exp.items]
    bare_generate(plan.lm, requests[:1])                       # warm-up
    bare, harness = [], []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(a.rounds):
            n, secs = bare_generate(plan.lm, requests)
            bare.append(n / secs)
            exp = Experiment(cfg, progress=False)
            exp.run(out)
            harness.append(exp.summary["arms"]["hf"]["output_throughput"])
    b, h = max(bare), max(harness)   # best of rounds for both: the least-disturbed measurement
    print(f"harness overhead | {a.model} | batch 1 | {len(requests)} prompts x <= {a.max_new_tokens} tokens | "
          f"{a.threads} threads")
    print(f"  bare generate  : {b:7.2f} output tok/s   (rounds: {', '.join(f'{x:.2f}' for x in bare)})")
    print(f"  testbed run    : {h:7.2f} output tok/s   (rounds: {', '.join(f'{x:.2f}' for x in harness)})")
    print(f"  overhead       : {100 * (1 - h / b):+.1f}%  (goal: within 5%)")
    print(json.dumps({"bare_tok_s": b, "harness_tok_s": h, "overhead_pct": 100 * (1 - h / b),
                      "rounds_bare": bare, "rounds_harness": harness, "prompts": len(requests)}))


if __name__ == "__main__":
    main()
