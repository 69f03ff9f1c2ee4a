"""A tier's confidence in its own answer: the mean log-probability of the tokens it emitted.

One teacher-forced forward pass over prompt + output (batch 1), timed and charged to the tier.

    conf = mean_logprob(lm, req.prompt_ids, req.output_ids)   # e.g. -0.21; None for an empty answer
"""
import torch


def mean_logprob(lm, prompt_ids: list[int], output_ids: list[int]) -> float | None:
    if not output_ids or not prompt_ids:
        return None
    ids = torch.tensor([prompt_ids + output_ids], dtype=torch.long, device=lm.device)       # [1, P + N]
    with torch.inference_mode():
        logits = lm.model(input_ids=ids).logits[0, len(prompt_ids) - 1:-1].float()          # [N, V]: predicts each output token
    target = torch.tensor(output_ids, dtype=torch.long, device=logits.device)[:, None]      # [N, 1]
    return float(torch.log_softmax(logits, dim=-1).gather(-1, target).mean())
