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

Arms run paged, hf, hf, paged (--rounds 2) so load drift on a shared machine hits both;
throughput is reported per wall second and per process CPU second (steadier under contention).

    python scripts/bench_paged.py                                  # 16 requests, 4096-token budget
    python scripts/bench_paged.py --requests 8 --model random:small-llama   # a quick smoke run
"""
import argparse
import dataclasses
import json
import random
import time

import torch

from testbed.config import ModelSpec
from testbed.drive import run_all
from testbed.engines.hf import HFEngine, HFOptions
from testbed.engines.paged.engine import PagedEngine, PagedOptions
from testbed.models import LoadedModel, load_model
from testbed.request import Request

WORDS = ("contract party shall notice clause term payment invoice delivery schedule warranty liability "
         "supplier customer agreement effective date renewal termination breach remedy audit record "
         "confidential data report quarter revenue margin region team launch product review risk").split()


class IgnoreEos(LoadedModel):
    """The same model with no stop tokens, so every request decodes its whole output budget (vLLM's --ignore-eos)."""

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        return ()


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
    ap.add_argument("--rounds", type=int, choices=(1, 2), default=2, help="2: paged, hf, hf, paged")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args()


def prompt_ids(tok, n_tokens: int, rng: random.Random) -> list[int]:
    """A chat prompt of exactly n_tokens: notes of synthetic sentences, cut to length."""
    words = " ".join(rng.choice(WORDS) for _ in range(n_tokens * 2))
    body = tok(f"Summarise these notes:\n{words}", add_special_tokens=False)["input_ids"]
    head = tok.apply_chat_template([{"role": "user", "content": ""}], add_generation_prompt=True, tokenize=False)
    wrap = tok(head, add_special_tokens=False)["input_ids"]
    return body[:max(1, n_tokens - len(wrap))] + wrap[-5:]


def workload(lm, args) -> list[tuple[list[int], int]]:
    rng = random.Random(args.seed)
    lo, hi = args.prompt_range
    out = []
    for _ in range(args.requests):
        u = rng.random()
        n = int(lo * (hi / lo) ** u) if args.dist == "loguniform" else int(lo + (hi - lo) * u)
        out.append((prompt_ids(lm.tokenizer, n, rng), rng.randint(*args.output_range)))
    return out


def requests(lm, work) -> list[Request]:
    now = time.perf_counter()
    return [Request(id=f"r{i}", prompt_ids=ids, max_new_tokens=m, arrival_time=now, eos_token_ids=lm.eos_token_ids)
            for i, (ids, m) in enumerate(work)]


def run_once(engine, lm, work) -> dict:
    """One timed pass of the workload through a fresh engine: wall and process CPU seconds."""
    reqs = requests(lm, work)
    t0, c0 = time.perf_counter(), time.process_time()
    run_all(engine, reqs)
    return {"reqs": reqs, "wall": time.perf_counter() - t0, "cpu": time.process_time() - c0, "stats": engine.stats()}


def make_engine(kind: str, lm, args, hf_batch: int):
    if kind == "hf":
        return HFEngine(lm, HFOptions(batch_size=hf_batch))
    return PagedEngine(lm, PagedOptions(block_size=args.block_size, kv_budget_tokens=args.kv_budget,
                                        max_num_batched_tokens=args.max_batched_tokens, max_num_seqs=256,
                                        watermark=args.watermark))


def run_abba(lm, work, args, hf_batch: int) -> dict[str, list[dict]]:
    """paged, hf, hf, paged: a load drift on a shared machine hits both arms alike."""
    for kind in ("paged", "hf"):
        run_all(make_engine(kind, lm, args, hf_batch), requests(lm, work[:1]))      # warm-up
    runs: dict[str, list[dict]] = {"hf": [], "paged": []}
    for kind in ("paged", "hf", "hf", "paged")[:2 * args.rounds]:
        runs[kind].append(run_once(make_engine(kind, lm, args, hf_batch), lm, work))
        print(f"[bench] {kind}: {runs[kind][-1]['wall']:.1f} s wall", flush=True)
    return runs


def card(model: str, args, runs: dict[str, list[dict]], hf_batch: int) -> dict:
    hf, pg = runs["hf"], runs["paged"]
    tokens = lambda rs: sum(r.num_output_tokens for run in rs for r in run["reqs"])   # noqa: E731
    wall = lambda rs: sum(run["wall"] for run in rs)                                    # noqa: E731
    cpu = lambda rs: sum(run["cpu"] for run in rs)                                      # noqa: E731
    h_tps, p_tps = tokens(hf) / wall(hf), tokens(pg) / wall(pg)
    pairs = [(a, b) for h, p in zip(hf, pg) for a, b in zip(h["reqs"], p["reqs"])]
    hst, pst = hf[-1]["stats"], pg[-1]["stats"]
    peak = max(run["stats"]["max_concurrent_seqs"] for run in pg)
    return {"model": model, "dtype": args.dtype, "device": device_name(args.device), "threads": torch.get_num_threads(), "requests": len(work_of(hf)),
            "kv_budget_tokens": args.kv_budget, "block_size": args.block_size, "watermark": args.watermark,
            "prompt_dist": args.dist, "ignore_eos": not args.stop_at_eos,
            "passes_per_arm": len(hf),
            "prompt_tokens_mean": sum(r.num_prompt_tokens for r in work_of(hf)) / len(work_of(hf)),
            "output_tokens_per_pass": tokens(hf) // len(hf), "hf_batch_size": hf_batch,
            "hf_output_tok_s": h_tps, "paged_output_tok_s": p_tps, "throughput_ratio": p_tps / h_tps,
            "hf_output_tok_per_cpu_s": tokens(hf) / cpu(hf), "paged_output_tok_per_cpu_s": tokens(pg) / cpu(pg),
            "cpu_throughput_ratio": (tokens(pg) / cpu(pg)) / (tokens(hf) / cpu(hf)),
            "hf_kv_waste_pct": hst.get("kv_waste_pct"), "paged_kv_waste_pct": pst.get("kv_waste_pct"),
            "hf_max_concurrent_seqs": hf_batch, "paged_max_concurrent_seqs": peak,
            "concurrency_ratio": peak / hf_batch, "paged_preemptions": pst["preemptions"],
            "match_rate": sum(a.output_ids == b.output_ids for a, b in pairs) / len(pairs),
            "hf_wall_s": wall(hf), "paged_wall_s": wall(pg)}


def device_name(device: str) -> str:
    """The card by name on a GPU (numbers without the card are not comparable), else the device string."""
    return torch.cuda.get_device_name(device) if device.startswith("cuda") else device


def work_of(runs: list[dict]) -> list[Request]:
    return runs[0]["reqs"]


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
    if args.threads:
        torch.set_num_threads(args.threads)
    lm = load_model(ModelSpec(id=args.model, dtype=args.dtype), args.device)
    if not args.stop_at_eos:
        lm = IgnoreEos(**{f.name: getattr(lm, f.name) for f in dataclasses.fields(lm)})
    work = workload(lm, args)
    hf_batch = max(1, args.kv_budget // (args.prompt_range[1] + args.output_range[1]))
    c = card(args.model, args, run_abba(lm, work, args, hf_batch), hf_batch)
    print_card(c)
    print(json.dumps(c))


if __name__ == "__main__":
    main()
