"""Why the labelling pass warms every item on CUDA: batch-1 answers timed pass after pass.

Two tiers answer the same golden prompts item by item (each tier in turn, as the labelling pass
does), after one untimed answer per tier, then the whole pass is repeated. On CUDA the first pass
pays kernel selection and loading at every new sequence length; later passes do not. With
--prefill-warmup N each prompt is first answered with N new tokens, untimed (N=1: a prefill).

    python scripts/bench_labelling_warmup.py --device cuda --passes 3
    python scripts/bench_labelling_warmup.py --device cuda --passes 2 --prefill-warmup 1

Each pass is the routing labelling pass itself (testbed.routing.outcomes.label_tiers), so this measures
the code the runner runs. Prints each pass's seconds per tier and per answer.
"""
import argparse
import time
from types import SimpleNamespace

from testbed.config import ModelSpec
from testbed.drive import run_all
from testbed.engines.hf import HFEngine, HFOptions
from testbed.models import load_model
from testbed.request import Request
from testbed.routing.outcomes import label_tiers
from testbed.workloads.datasets import load_dataset
from testbed.workloads.prompts import build_messages, render_prompt

CATEGORIES = ["lookup", "clause_extraction", "json_extraction", "multi_doc", "grounded_output"]   # the short ones


def answerer(tiers: list, prompts: list[dict[str, list[int]]], max_new: int):
    """run_one(rank, item) for label_tiers: one batch-1 hf answer, the cheaper tiers keeping log-probs as the
    labelling pass does; returns (request, text, seconds)."""
    def run_one(rank: int, item) -> tuple:
        lm = tiers[rank]
        engine = HFEngine(lm, HFOptions())
        engine.record_logprobs = rank < len(tiers) - 1
        req = Request(id=item.id, prompt_ids=prompts[rank][item.id],
                      max_new_tokens=max_new, eos_token_ids=lm.eos_token_ids)
        t = time.perf_counter()
        run_all(engine, [req])
        return req, lm.tokenizer.decode(req.output_ids, skip_special_tokens=True), time.perf_counter() - t
    return run_one


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
    prompts = [{it.id: render_prompt(lm.tokenizer, build_messages(it))[1] for it in items} for lm in tiers]
    names = [SimpleNamespace(name=m, cost_usd=lambda seconds, tokens: 0.0) for m in args.models]
    if args.prefill_warmup:
        t = time.perf_counter()
        label_tiers(names, items, answerer(tiers, prompts, args.prefill_warmup), None, progress=False)
        print(f"untimed {args.prefill_warmup}-token answer of every prompt: {time.perf_counter() - t:.2f} s")
    for p in range(args.passes):      # the labelling pass itself: one untimed answer per tier, then item by item
        secs = label_tiers(names, items, answerer(tiers, prompts, args.max_new_tokens), None, progress=False).seconds
        for j, m in enumerate(args.models):
            s = secs[:, j]
            print(f"pass {p} {m:22s} {s.sum():6.2f} s   per answer min {s.min():.3f} max {s.max():.3f} "
                  f"[{' '.join(f'{x:.2f}' for x in s)}]")


if __name__ == "__main__":
    main()
