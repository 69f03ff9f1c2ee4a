"""Checks an arm's `speculative:` section against its target model and sampling before anything runs.

The section's own validation (config.py) sees no model; these need one. Called once per arm
before the run directory exists, so a bad draft never leaves a half-written result:

    check_arm(plan)                                  # a testbed.arm.ArmPlan: .name, .arm.sections, .lm, .sampling
    check_draft_compatible(lm, section, "arms.x")    # the draft loads and shares the target's tokenizer
"""
from typing import Any

from testbed.errors import UserError
from testbed.request import SamplingParams
from testbed.speculative.verify import unsupported_sampling


def check_draft_compatible(target_lm: Any, section: Any, where: str = "arm") -> None:
    """Build the section's proposer for `target_lm` now (it is cached for the run): a draft model is
    loaded and its tokenizer compared with the target's (a UserError names both); a self-speculative
    depth beyond the target's layers is refused."""
    try:
        section.proposer(target_lm)
    except UserError as e:
        raise UserError(f"{where}: {e.message}", e.fix) from None


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
