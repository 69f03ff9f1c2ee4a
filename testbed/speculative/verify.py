"""The one verification rule of speculative decoding (its sampling maths: testbed/engines/sampling.py).

The target scores the last accepted token plus k draft tokens in one forward pass, which gives
k+1 next-token distributions p [k+1, V]. Then (Leviathan et al. 2023; gpt-fast's `speculative_decode`):

- greedy: accept draft tokens while each equals the target's argmax; emit the argmax at the
  first mismatch (or the bonus argmax after the last draft token when all k are accepted);
- sampling: accept draft token x_i with probability min(1, p_i(x_i) / q_i(x_i)); at the first
  rejection emit a sample of norm(max(0, p_i − q_i)); when all k are accepted emit a bonus
  sample of p_k. The emitted tokens are then distributed exactly as the target alone would make them.

    tokens, n_accepted = verify(draft_ids, target_logits, sampling, draft_probs, generator)
"""
import torch

from testbed.engines.sampling import draw, logits_to_probs
from testbed.request import SamplingParams

MIN_TEMPERATURE = 1e-3   # below this, softmax(logits / T) underflows to one-hot and p/q ratios are meaningless


def unsupported_sampling(sp: SamplingParams) -> str | None:
    """Why the verifier cannot honour these sampling settings, or None."""
    if 0.0 < sp.temperature < MIN_TEMPERATURE:
        return (f"speculative decoding cannot verify temperature {sp.temperature}: probabilities underflow "
                f"below {MIN_TEMPERATURE}; use temperature 0 (greedy) or at least {MIN_TEMPERATURE}")
    if not 0.0 < sp.top_p <= 1.0 or sp.top_k < 0:
        return f"speculative decoding needs 0 < top_p <= 1 and top_k >= 0 (got top_p={sp.top_p}, top_k={sp.top_k})"
    return None


def verify(draft: torch.Tensor, target_logits: torch.Tensor, sp: SamplingParams,
           draft_probs: torch.Tensor | None = None,
           generator: torch.Generator | None = None) -> tuple[list[int], int]:
    """Tokens to emit (accepted drafts + one corrected or bonus token) and how many drafts were accepted.

    draft [k] long; target_logits [k+1, V]; draft_probs q [k, V] or None for a deterministic
    proposer (one-hot q). k may be 0: then this is a plain decode step.
    """
    if sp.greedy:
        return _greedy(draft, target_logits)
    p = logits_to_probs(target_logits, sp)                                  # [k+1, V]
    q = draft_probs if draft_probs is not None else _one_hot(draft, p.shape[-1])
    return _rejection_sample(draft, p, q[:, :p.shape[-1]], generator)


def _greedy(draft: torch.Tensor, logits: torch.Tensor) -> tuple[list[int], int]:
    target = logits.argmax(-1)                                              # [k+1]
    n = _leading_true(draft == target[:-1])
    return draft[:n].tolist() + [int(target[n])], n


def _rejection_sample(draft: torch.Tensor, p: torch.Tensor, q: torch.Tensor,
                      generator: torch.Generator | None) -> tuple[list[int], int]:
    k = draft.numel()
    rows = torch.arange(k, device=draft.device)
    p_x, q_x = p[rows, draft], q[rows, draft]                               # [k] each
    u = torch.rand(k, generator=generator, device=p.device)                 # [k]
    n = _leading_true(u * q_x < p_x)                                        # u < min(1, p/q), as q_x > 0
    last = draw(p[k], generator) if n == k else draw(residual(p[n], q[n]), generator)
    return draft[:n].tolist() + [last], n


def residual(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """norm(max(0, p − q)) [V]; falls back to p when rounding leaves no mass (p == q up to float error)."""
    r = (p - q).clamp(min=0)
    total = r.sum()
    return r / total if total > 0 else p


def _one_hot(draft: torch.Tensor, vocab: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(draft, vocab).float()               # [k, V]


def _leading_true(mask: torch.Tensor) -> int:
    """Length of the leading run of True in a 1-D bool tensor."""
    return int(mask.long().cumprod(0).sum().item()) if mask.numel() else 0
