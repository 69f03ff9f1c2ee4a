"""Before a run directory exists: which arms can run here, each arm's plan, and every check of them.

    skipped = unavailable_arms(cfg)                          # {arm: why}: engines not installed here
    plans = arm_plans(cfg, arm_names, items, device, progress=True, check_only=False)
    check_arms(plans, items)                                 # UserError naming arms.<name> and the fix

testbed/runner.py's Experiment calls these in this order when it is built, so a bad input fails before
anything is written.
"""
from typing import Any

from testbed.arm import ArmPlan
from testbed.config import ExperimentConfig
from testbed.engines import ENGINES
from testbed.errors import UserError
from testbed.models import load_cached
from testbed.workloads.standard import longest_random_request


def unavailable_arms(cfg: ExperimentConfig) -> dict[str, str]:
    """Arms whose engine cannot run here (vllm not installed): skipped with one line each, unless the
    run would have nothing to compare against (the baseline, or every arm)."""
    reasons = {a: why for a, arm in cfg.arms.items() if (why := ENGINES.get(arm.engine).unavailable())}
    if cfg.baseline in reasons or len(reasons) == len(cfg.arms):
        arm = cfg.baseline if cfg.baseline in reasons else next(iter(reasons))
        raise UserError(f"arms.{arm}: {reasons[arm]}", ENGINES.get(cfg.arms[arm].engine).install_hint())
    for arm, why in reasons.items():
        print(f"[testbed] skipping arm {arm}: {why} ({ENGINES.get(cfg.arms[arm].engine).install_hint()})",
              flush=True)
    return reasons


def arm_plans(cfg: ExperimentConfig, arm_names: list[str], items: list, device: Any, progress: bool,
              check_only: bool) -> dict[str, ArmPlan]:
    """One bound ArmPlan per arm, models loaded once and shared; UserError where an arm's requests cannot fit
    its model's context. check_only (`testbed validate`): no section work that runs requests."""
    shared: dict[str, Any] = {"models": {}}     # what the arms share: loaded models, routing's labels
    plans = {}
    for name in arm_names:
        spec = cfg.arm_model(name)
        lm = load_cached(shared["models"], spec, device)
        plan = ArmPlan(name, cfg, lm, progress=progress, shared=shared)
        plan.bind(items, check_only=check_only)
        limit = plan.lm.max_context
        if limit and plan.max_new_tokens >= limit:
            raise UserError(f"arms.{name}: max_new_tokens {plan.max_new_tokens} is beyond the context of "
                            f"{spec.id} ({limit} tokens)", f"set workload.max_new_tokens below {limit}")
        if limit and (longest := longest_random_request(items)) > limit:
            raise UserError(f"workload.random: requests of up to {longest} tokens (prompt + output) are beyond the "
                            f"context of {spec.id} ({limit} tokens)", "lower input_len, output_len or range_ratio")
        plans[name] = plan
    return plans


def check_arms(plans: dict[str, ArmPlan], items: list) -> None:
    """Before anything is written: every context step against the dataset, then each arm's engine
    (and its sections) against the workload's requests, e.g. the paged KV budget. Sections such as
    speculative check their model and sampling earlier, in ArmPlan.bind."""
    for name, plan in plans.items():
        plan.check(items)
        requests = [plan.make_request(it, 0.0, it.id, shape=False) for it in items]
        try:
            ENGINES.get(plan.arm.engine).check_arm(plan.lm, plan.arm.options, plan.arm.sections,
                                                   requests, items)
        except UserError as e:
            raise UserError(f"arms.{name}: {e.message}", e.fix) from None
