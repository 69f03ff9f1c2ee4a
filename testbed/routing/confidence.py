"""A tier's confidence in its own answer: the mean log-probability of the tokens it emitted.

Where the tier engine kept the log-probs while generating (hf, `Engine.record_logprobs`), the
routing layer averages those and runs nothing here. Otherwise: one teacher-forced forward pass
over prompt + output (batch 1), timed and charged to the tier.
Only the positions that predict an output token go through the LM head (`logits_to_keep`, where
the model takes it): over a 150k-token vocabulary the head is a quarter of a small model's
forward, and the prompt's logits are never needed.

    conf = mean_logprob(lm, req.prompt_ids, req.output_ids)   # e.g. -0.21; None for an empty answer
"""
import functools
import inspect

import torch


@functools.cache
def _takes_logits_to_keep(model_cls: type) -> bool:
    return "logits_to_keep" in inspect.signature(model_cls.forward).parameters


def mean_logprob(lm, prompt_ids: list[int], output_ids: list[int], output_positions_only: bool = True) -> float | None:
    """`output_positions_only=False` computes every position's logits (the reference, for benchmarks)."""
    if not output_ids or not prompt_ids:
        return None
    n = len(output_ids)
    ids = torch.tensor([prompt_ids + output_ids], dtype=torch.long, device=lm.device)       # [1, P + N]
    with torch.inference_mode():
        if output_positions_only and _takes_logits_to_keep(type(lm.model)):   # last N + 1 positions: P - 1 .. P + N - 1
            logits = lm.model(input_ids=ids, logits_to_keep=n + 1).logits[0, :-1].float()  # [N, V]
        else:
            logits = lm.model(input_ids=ids).logits[0, len(prompt_ids) - 1:-1].float()     # [N, V]
    target = torch.tensor(output_ids, dtype=torch.long, device=logits.device)[:, None]      # [N, 1]
    return float(torch.log_softmax(logits, dim=-1).gather(-1, target).mean())
