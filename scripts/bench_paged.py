"""Paged continuous batching vs hf static batching at the same KV memory budget (one process).

Regime: offline serving of a mixed-length batch of requests on one device (by default
SmolLM2-135M-Instruct, float32, CPU). Prompt lengths are drawn log-uniform in [50, 1500]
tokens (right-skewed like chat traffic: many short prompts, a few long ones; `--dist uniform`
for a flat mix), output lengths uniform in [16, 128] (EOS ignored, as `vllm bench --ignore-eos`,
so each request decodes exactly its length; `--stop-at-eos` to stop); all requests arrive at
t=0; greedy. Both engines get the same KV budget in tokens:

  * hf (static batching) reserves, per row, the longest prompt the workload allows plus the
    largest output budget, so its batch size is budget // (1500 + 128) by default;
  * paged holds budget // block_size blocks and admits requests while blocks are free, keeping
    --watermark of them (10%) as headroom so running decodes rarely force a preemption.

Prints a card (output tok/s each and the ratio, kv_waste_pct each, peak concurrent sequences
at the budget and the ratio, greedy token match rate) and, last, one line of JSON.

It runs on the testbed runner (`Experiment`), the same measurement path as `testbed run`: the
requests are written as raw prompts (vLLM's custom JSONL) and both arms run them as one block,
warmed up by one untimed request per pass. Arms run hf, paged, paged, hf (--rounds 2: two repeats,
the order rotated) so load drift on a shared machine hits both; throughput is reported per wall
second and per process CPU second (steadier under contention).

    python scripts/bench_paged.py                                  # 16 requests, 4096-token budget
    python scripts/bench_paged.py --requests 8 --model random:small-llama   # a quick smoke run
"""
import argparse
import json
import random
import tempfile
from pathlib import Path

import torch

from testbed.config import validate
from testbed.models import resolve_local, tiny_tokenizer
from testbed.plugins import load_plugins
from testbed.runner import Experiment

WORDS = ("contract party shall notice clause term payment invoice delivery schedule warranty liability "
         "supplier customer agreement effective date renewal termination breach remedy audit record "
         "confidential data report quarter revenue margin region team launch product review risk").split()


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", help="float32 on the CPU (bfloat16 prefill is 6x slower there); "
                                                       "bfloat16 or float16 on a GPU")
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--kv-budget", type=int, default=4096, help="KV cache budget in tokens, both engines")
    ap.add_argument("--block-size", type=int, default=8,
                    help="8 halves the tail-block slack of 16 at no measurable CPU cost")
    ap.add_argument("--max-batched-tokens", type=int, default=512)
    ap.add_argument("--watermark", type=float, default=0.1, help="share of blocks paged keeps free when admitting")
    ap.add_argument("--prompt-range", type=int, nargs=2, default=(50, 1500))
    ap.add_argument("--output-range", type=int, nargs=2, default=(16, 128))
    ap.add_argument("--dist", choices=("loguniform", "uniform"), default="loguniform")
    ap.add_argument("--stop-at-eos", action="store_true", help="stop at EOS (outputs then fall short of 16-128)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads; 1 avoids OpenMP spin on a shared CPU")
    ap.add_argument("--rounds", type=int, choices=(1, 2), default=2, help="2: hf, paged, paged, hf")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args()


def tokenizer(model_id: str):
    """The model's tokenizer alone: the workload file is written before the experiment loads the model."""
    if model_id.startswith("random:"):
        return tiny_tokenizer()
    from transformers import AutoTokenizer
    path = resolve_local(model_id)
    return AutoTokenizer.from_pretrained(str(path) if path else model_id)


def prompt_text(tok, n_tokens: int, rng: random.Random) -> str:
    """A chat prompt of about n_tokens: notes of synthetic sentences, cut to length, as text sent as it is."""
    words = " ".join(rng.choice(WORDS) for _ in range(n_tokens * 2))
    body = tok(f"Summarise these notes:\n{words}", add_special_tokens=False)["input_ids"]
    head = tok.apply_chat_template([{"role": "user", "content": ""}], add_generation_prompt=True, tokenize=False)
    wrap = tok(head, add_special_tokens=False)["input_ids"]
    return tok.decode(body[:max(1, n_tokens - len(wrap))] + wrap[-5:])


def write_workload(tok, args, path: Path) -> None:
    """The requests as vLLM's custom JSONL (a raw prompt and its output budget per line)."""
    rng = random.Random(args.seed)
    lo, hi = args.prompt_range
    with path.open("w") as f:
        for _ in range(args.requests):
            u = rng.random()
            n = int(lo * (hi / lo) ** u) if args.dist == "loguniform" else int(lo + (hi - lo) * u)
            text = prompt_text(tok, n, rng)
            f.write(json.dumps({"prompt": text, "output_tokens": rng.randint(*args.output_range)}) + "\n")


def config(args, dataset: Path, hf_batch: int) -> dict:
    """hf first (the baseline), then paged; one block of every request, so paged sees the whole batch at once;
    `rounds` repeats rotate the arm order: hf, paged, paged, hf."""
    paged = {"engine": "paged", "block_size": args.block_size, "kv_budget_tokens": args.kv_budget,
             "max_num_batched_tokens": args.max_batched_tokens, "max_num_seqs": 256, "watermark": args.watermark}
    return {"name": "bench_paged", "model": {"id": args.model, "dtype": args.dtype}, "device": args.device,
            "threads": args.threads or None, "repeats": args.rounds,
            "workload": {"dataset": str(dataset), "max_new_tokens": args.output_range[1], "warmup": 1,
                         "ignore_eos": not args.stop_at_eos, "order": "interleaved", "block_size": args.requests},
            "baseline": "hf", "arms": {"hf": {"engine": "hf", "batch_size": hf_batch}, "paged": paged}}


def card(args, exp: Experiment, hf_batch: int) -> dict:
    """The card from the run's own summary; per-pass engine counters from its runs."""
    hf, pg = exp.summary["arms"]["hf"], exp.summary["arms"]["paged"]
    tokens = lambda arm: sum(r["output_tokens"] for r in exp.records if r["arm"] == arm)   # noqa: E731
    per_cpu = lambda arm: tokens(arm) / exp.summary["arms"][arm]["cpu_seconds"]             # noqa: E731
    peak = max(run.engine_stats["max_concurrent_seqs"] for run in exp.runs["paged"])
    wall = lambda arm: sum(run.wall_s for run in exp.runs[arm])                            # noqa: E731
    return {"model": args.model, "dtype": args.dtype, "device": device_name(args.device),
            "threads": torch.get_num_threads(), "requests": len(exp.items),
            "kv_budget_tokens": args.kv_budget, "block_size": args.block_size, "watermark": args.watermark,
            "prompt_dist": args.dist, "ignore_eos": not args.stop_at_eos, "passes_per_arm": args.rounds,
            "prompt_tokens_mean": hf["prompt_tokens_mean"],
            "output_tokens_per_pass": tokens("hf") // args.rounds, "hf_batch_size": hf_batch,
            "hf_output_tok_s": hf["output_throughput"], "paged_output_tok_s": pg["output_throughput"],
            "throughput_ratio": pg["output_throughput"] / hf["output_throughput"],
            "hf_output_tok_per_cpu_s": per_cpu("hf"), "paged_output_tok_per_cpu_s": per_cpu("paged"),
            "cpu_throughput_ratio": per_cpu("paged") / per_cpu("hf"),
            "hf_kv_waste_pct": hf.get("kv_waste_pct"), "paged_kv_waste_pct": pg.get("kv_waste_pct"),
            "hf_max_concurrent_seqs": hf_batch, "paged_max_concurrent_seqs": peak,
            "concurrency_ratio": peak / hf_batch, "paged_preemptions": pg["preemptions"],
            "match_rate": pg["match_rate_vs_baseline"], "hf_wall_s": wall("hf"), "paged_wall_s": wall("paged")}


def device_name(device: str) -> str:
    """The card by name on a GPU (numbers without the card are not comparable), else the device string."""
    return torch.cuda.get_device_name(device) if device.startswith("cuda") else device


def print_card(c: dict) -> None:
    print(f"\n== paged vs hf static batching: {c['model']} on {c['device']} ({c['threads']} threads) ==")
    print(f"{c['requests']} requests, prompts mean {c['prompt_tokens_mean']:.0f} tok ({c['prompt_dist']}), "
          f"KV budget {c['kv_budget_tokens']} tokens, block {c['block_size']}")
    print(f"{'':24}{'hf static':>12}{'paged':>12}{'ratio':>9}")
    print(f"{'output tok/s':24}{c['hf_output_tok_s']:12.1f}{c['paged_output_tok_s']:12.1f}{c['throughput_ratio']:9.2f}")
    print(f"{'kv_waste_pct':24}{c['hf_kv_waste_pct']:12.1f}{c['paged_kv_waste_pct']:12.1f}")
    print(f"{'max concurrent seqs':24}{c['hf_max_concurrent_seqs']:12d}{c['paged_max_concurrent_seqs']:12d}"
          f"{c['concurrency_ratio']:9.2f}")
    print(f"{'output tok / CPU s':24}{c['hf_output_tok_per_cpu_s']:12.1f}{c['paged_output_tok_per_cpu_s']:12.1f}"
          f"{c['cpu_throughput_ratio']:9.2f}")
    print(f"{'wall s (all passes)':24}{c['hf_wall_s']:12.1f}{c['paged_wall_s']:12.1f}")
    print(f"greedy match rate {c['match_rate']:.0%}, paged preemptions {c['paged_preemptions']}")


def main() -> None:
    args = parse_args()
    load_plugins()      # engines registered before the config is validated
    hf_batch = max(1, args.kv_budget // (args.prompt_range[1] + args.output_range[1]))
    with tempfile.TemporaryDirectory() as tmp:
        dataset = Path(tmp) / "workload.jsonl"
        write_workload(tokenizer(args.model), args, dataset)
        exp = Experiment(validate(config(args, dataset, hf_batch)), progress=False)
        exp.run(Path(tmp) / "runs")
    for arm, run in sorted(((arm, run) for arm, runs in exp.runs.items() for run in runs), key=lambda x: x[1].started):
        print(f"[bench] {arm}: {run.wall_s:.1f} s wall", flush=True)
    c = card(args, exp, hf_batch)
    print_card(c)
    print(json.dumps(c))


if __name__ == "__main__":
    main()
