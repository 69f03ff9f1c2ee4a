"""The cascade's confidence: what it costs the small tier per answer, three ways, in one run.

    answer + full pass   generate, then a teacher-forced pass with every position's logits (before)
    answer + head pass   generate, then a teacher-forced pass with the LM head on output positions only
    answer, kept         generate with the hf engine keeping each token's log-prob (record_logprobs): no pass

Regime: batch 1, greedy, the golden items' chat prompts, the hf engine, this machine's CPU
(float32). The three run in this one process on the same prompts (the two generations in
alternating order per item) and their answers and confidences must agree.

    python scripts/bench_confidence.py --model qwen2.5-coder-0.5b --limit 10 --max-new-tokens 64

Prints seconds per answer for each and the ratios to "answer, kept".
"""
import argparse
import json
import time

import torch

from testbed.config import ModelSpec
from testbed.drive import run_all
from testbed.engines.hf import HFEngine, HFOptions
from testbed.models import load_model
from testbed.request import Request
from testbed.routing.confidence import mean_logprob
from testbed.workloads.datasets import load_dataset
from testbed.workloads.prompts import build_messages, render_prompt

CATEGORIES = ["lookup", "clause_extraction", "json_extraction", "multi_doc", "grounded_output"]


def answer(lm, prompt: list[int], max_new: int, keep: bool) -> tuple[Request, float]:
    engine = HFEngine(lm, HFOptions())
    engine.record_logprobs = keep
    req = Request(id="b", prompt_ids=prompt, max_new_tokens=max_new, eos_token_ids=lm.eos_token_ids)
    t = time.perf_counter()
    run_all(engine, [req])
    return req, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lm = load_model(ModelSpec(id=args.model), "cpu")
    prompts = [render_prompt(lm.tokenizer, build_messages(it))[1]
               for it in load_dataset("golden", categories=CATEGORIES, limit=args.limit)]
    answer(lm, prompts[0], 4, keep=True)                                  # warm-up
    secs = {"answer + full pass": 0.0, "answer + head pass": 0.0, "answer, kept": 0.0}
    worst, out_tokens = 0.0, 0
    for i, prompt in enumerate(prompts):
        if i % 2:       # alternate which generation runs first, so order effects hit both alike
            kept, s_kept = answer(lm, prompt, args.max_new_tokens, keep=True)
        req, s = answer(lm, prompt, args.max_new_tokens, keep=False)
        t = time.perf_counter()
        full = mean_logprob(lm, prompt, req.output_ids, output_positions_only=False)
        secs["answer + full pass"] += s + time.perf_counter() - t
        t = time.perf_counter()
        head = mean_logprob(lm, prompt, req.output_ids)
        secs["answer + head pass"] += s + time.perf_counter() - t
        if not i % 2:
            kept, s_kept = answer(lm, prompt, args.max_new_tokens, keep=True)
        secs["answer, kept"] += s_kept
        assert kept.output_ids == req.output_ids, "greedy answers differ between the runs"
        mean_kept = sum(kept.token_logprobs) / len(kept.token_logprobs)
        worst = max(worst, abs(full - head), abs(full - mean_kept))
        out_tokens += req.num_output_tokens
    n = len(prompts)
    print(f"model {args.model}, {n} golden prompts ({sum(map(len, prompts)) / n:.0f} tokens on average), "
          f"{out_tokens / n:.1f} output tokens on average, batch 1, {args.threads} threads")
    for k, v in secs.items():
        print(f"  {k:20s} {v / n:7.2f} s per answer   x{v / secs['answer, kept']:.3f} of 'answer, kept'")
    print(json.dumps({"s_per_answer": {k: v / n for k, v in secs.items()}, "max_abs_conf_diff": worst}))


if __name__ == "__main__":
    main()
