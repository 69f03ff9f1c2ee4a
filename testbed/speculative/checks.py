"""Checks an arm's `speculative:` section against its target model and sampling before anything runs.

The section's own validation (config.py) sees no model; these need one. Called once per arm
before the run directory exists, so a bad draft never leaves a half-written result:

    check_arm(plan)                                  # a testbed.arm.ArmPlan: .name, .arm.sections, .lm, .sampling
    check_draft_compatible(lm, section, "arms.x")    # the draft loads and shares the target's tokenizer
    warn_if_draft_larger(lm, proposer, "arms.x")     # a draft bigger than its target: a warning with measured c
"""
import statistics
import sys
import time
from typing import Any

import torch

from testbed.engines.hf_cache import forward, new_cache, rollback
from testbed.errors import UserError
from testbed.request import SamplingParams
from testbed.speculative.verify import unsupported_sampling


def check_draft_compatible(target_lm: Any, section: Any, where: str = "arm") -> None:
    """Build the section's proposer for `target_lm` now (it is cached for the run): a draft model is
    loaded and its tokenizer compared with the target's (a UserError names both); a self-speculative
    depth beyond the target's layers is refused."""
    try:
        proposer = section.proposer(target_lm)
    except UserError as e:
        raise UserError(f"{where}: {e.message}", e.fix) from None
    warn_if_draft_larger(target_lm, proposer, where)


def warn_if_draft_larger(target_lm: Any, proposer: Any, where: str = "arm") -> str | None:
    """A draft model with more parameters than its target cannot save time (c > 1): print a warning
    with c measured here (one draft decode step over one target decode step) and return it."""
    draft = getattr(proposer, "draft_lm", None)
    if draft is None or draft is target_lm:
        return None
    n_target, n_draft = n_params(target_lm.model), n_params(draft.model)
    if n_draft <= n_target:
        return None
    c = step_seconds(draft.model) / step_seconds(target_lm.model)
    msg = (f"{where}: the draft {draft.spec_id!r} ({n_draft / 1e6:.1f}M parameters) is larger than the target "
           f"{target_lm.spec_id!r} ({n_target / 1e6:.1f}M); measured c = {c:.2f} (one draft step over one "
           f"target step), so speculation is bound to lose unless c < 1; pick a smaller draft")
    print(f"[testbed] warning: {msg}", file=sys.stderr)
    return msg


def n_params(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def step_seconds(model: Any, context: int = 16, repeats: int = 5) -> float:
    """Median wall time of one decode step after `context` tokens (the regime a draft runs in)."""
    cache, times = new_cache(model), []
    with torch.inference_mode():
        forward(model, [1] * context, cache, keep=1)
        for _ in range(repeats):
            t0 = time.perf_counter()
            forward(model, [1], cache, keep=1)
            if model.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            rollback(cache, context)
    return statistics.median(times)


def check_sampling(sampling: SamplingParams, where: str = "speculative") -> None:
    """UserError when the verifier cannot honour these sampling settings."""
    reason = unsupported_sampling(sampling)
    if reason:
        raise UserError(f"{where}: {reason}", "set sampling.temperature to 0 or at least 0.001 for this arm")


def check_arm(plan: Any) -> None:
    """Every speculative check for one arm plan; a no-op for an arm without a `speculative:` section."""
    section = plan.arm.sections.get("speculative")
    if section is None:
        return
    where = f"arms.{plan.name}"
    check_sampling(plan.sampling, f"{where}.sampling")
    check_draft_compatible(plan.lm, section, where)
