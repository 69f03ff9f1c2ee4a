"""Why the labelling pass warms every item on CUDA: batch-1 answers timed pass after pass.

Two tiers answer the same golden prompts item by item (each tier in turn, as the labelling pass
does), after one untimed answer per tier, then the whole pass is repeated. On CUDA the first pass
pays kernel selection and loading at every new sequence length; later passes do not. With
--prefill-warmup N each prompt is first answered with N new tokens, untimed (N=1: a prefill).

    python scripts/bench_labelling_warmup.py --device cuda --passes 3
    python scripts/bench_labelling_warmup.py --device cuda --passes 2 --prefill-warmup 1

Prints each pass's seconds per tier and per answer.
"""
import argparse
import time

from bench_confidence import CATEGORIES, answer

from testbed.config import ModelSpec
from testbed.models import load_model
from testbed.workloads.datasets import load_dataset
from testbed.workloads.prompts import build_messages, render_prompt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["random:small-llama", "random:llama-1b"])
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--prefill-warmup", type=int, default=0, help="new tokens of an untimed answer per prompt first")
    args = ap.parse_args()
    tiers = [load_model(ModelSpec(id=m, dtype=args.dtype), args.device) for m in args.models]
    items = load_dataset("golden", categories=CATEGORIES, limit=args.limit)
    prompts = [[render_prompt(lm.tokenizer, build_messages(it))[1] for it in items] for lm in tiers]
    for j, lm in enumerate(tiers):
        answer(lm, prompts[j][0], args.max_new_tokens, keep=j == 0)            # the labelling pass's warm-up
    if args.prefill_warmup:
        t = time.perf_counter()
        for i in range(len(items)):
            for j, lm in enumerate(tiers):
                answer(lm, prompts[j][i], args.prefill_warmup, keep=j == 0)
        print(f"untimed {args.prefill_warmup}-token answer of every prompt: {time.perf_counter() - t:.2f} s")
    for p in range(args.passes):
        secs = [[0.0] * len(items) for _ in tiers]
        for i in range(len(items)):
            for j, lm in enumerate(tiers):
                _, secs[j][i] = answer(lm, prompts[j][i], args.max_new_tokens, keep=j == 0)
        for j, m in enumerate(args.models):
            s = secs[j]
            print(f"pass {p} {m:22s} {sum(s):6.2f} s   per answer min {min(s):.3f} max {max(s):.3f} "
                  f"[{' '.join(f'{x:.2f}' for x in s)}]")


if __name__ == "__main__":
    main()
