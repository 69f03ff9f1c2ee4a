"""The cascade's confidence pass: full-vocabulary logits at every position vs the output positions only.

Regime: batch 1, the golden items' chat prompts with their gold answer teacher-forced as the
output (lengths like a tier's answers), float32 on this machine's CPU. Both variants run in this
one process on the same inputs, alternating per item, and must give the same mean log-prob.

    python scripts/bench_confidence.py --model qwen2.5-coder-0.5b --limit 20 --rounds 2

Prints one line per variant and the ratio (all positions / output positions only).
"""
import argparse
import json
import time

import torch

from testbed.config import ModelSpec
from testbed.models import load_model
from testbed.routing.confidence import mean_logprob
from testbed.workloads.datasets import load_dataset
from testbed.workloads.prompts import build_messages, render_prompt


def all_positions(lm, prompt_ids: list[int], output_ids: list[int]) -> float:
    """The reference: logits for every position, then the ones that predict the output."""
    ids = torch.tensor([prompt_ids + output_ids], dtype=torch.long, device=lm.device)
    with torch.inference_mode():
        logits = lm.model(input_ids=ids).logits[0, len(prompt_ids) - 1:-1].float()
    target = torch.tensor(output_ids, dtype=torch.long, device=logits.device)[:, None]
    return float(torch.log_softmax(logits, dim=-1).gather(-1, target).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lm = load_model(ModelSpec(id=args.model), "cpu")
    cats = ["lookup", "clause_extraction", "json_extraction", "multi_doc", "grounded_output"]
    inputs = []
    for item in load_dataset("golden", categories=cats, limit=args.limit):
        _, prompt = render_prompt(lm.tokenizer, build_messages(item))
        inputs.append((prompt, lm.tokenizer.encode(str(item.answers[0]), add_special_tokens=False)))
    all_positions(lm, *inputs[0])                                   # warm-up
    secs = {"all_positions": 0.0, "output_only": 0.0}
    worst = 0.0
    for _ in range(args.rounds):
        for prompt, output in inputs:
            t = time.perf_counter()
            ref = all_positions(lm, prompt, output)
            secs["all_positions"] += time.perf_counter() - t
            t = time.perf_counter()
            got = mean_logprob(lm, prompt, output)
            secs["output_only"] += time.perf_counter() - t
            worst = max(worst, abs(ref - got))
    n = args.rounds * len(inputs)
    prompt_mean = sum(len(p) for p, _ in inputs) / len(inputs)
    output_mean = sum(len(o) for _, o in inputs) / len(inputs)
    print(f"model {args.model}, {len(inputs)} items x {args.rounds} rounds, prompt {prompt_mean:.0f} / "
          f"output {output_mean:.1f} tokens on average, {args.threads} threads")
    for k, v in secs.items():
        print(f"  {k:14s} {1000 * v / n:8.1f} ms per pass")
    print(json.dumps({"ratio": secs["all_positions"] / secs["output_only"], "max_abs_diff": worst,
                      "ms_all_positions": 1000 * secs["all_positions"] / n,
                      "ms_output_only": 1000 * secs["output_only"] / n}))


if __name__ == "__main__":
    main()
