"""Can the arms coexist in memory? Interleaving keeps every arm's engine loaded at once.

    check_coexist(plans, items, device)    # UserError naming the arms and the estimate, or None

Estimate per arm: its model's weights (loaded once before the run in either order, shared by arms
on the same model) plus its KV cache. An engine that keeps memory for as long as it stays loaded
says how much (`Engine.held_bytes`: paged's KV pool, vLLM's KV space or its share of the GPU), so
interleaving holds every such pool at once; a static-batching engine's cache lives only while a
batch runs (its batch width x (longest prompt + max_new_tokens) tokens), so only the largest one is
ever held. The weights are already resident when this runs, so what must fit into the memory still
available is every held pool plus the largest transient cache.
"""
from typing import Any

import psutil
import torch

from testbed.engines import ENGINES
from testbed.engines.vllm_args import kv_bytes_per_token
from testbed.errors import UserError
from testbed.schedule import arm_width

GB = 1e9


def weight_bytes(lm: Any) -> int:
    return sum(p.numel() * p.element_size() for p in lm.model.parameters())


def kv_estimate(plan: Any, items: list, device: Any) -> tuple[int, bool]:
    """(KV bytes, whether the engine holds them while loaded) for one arm."""
    o = plan.arm.options
    held = ENGINES.get(plan.arm.engine).held_bytes(plan.lm, o, device)
    if held:
        return held, True
    longest = max((len(plan.make_request(it, 0.0, it.id, shape=False).prompt_ids) for it in items), default=0)
    return arm_width(o) * (longest + plan.max_new_tokens) * kv_bytes_per_token(plan.lm), False


def available_bytes(device: Any) -> int:
    if str(device).startswith("cuda"):
        return torch.cuda.mem_get_info(torch.device(device))[0]
    return psutil.virtual_memory().available


def check_coexist(plans: dict[str, Any], items: list, device: Any) -> None:
    """Raise UserError when the arms' KV caches cannot be held at once (interleaved order)."""
    est = {name: kv_estimate(plan, items, device) for name, plan in plans.items()}
    held = sum(b for b, fixed in est.values() if fixed)
    transient = max((b for b, fixed in est.values() if not fixed), default=0)
    need, have = held + transient, available_bytes(device)
    if need <= have:
        return
    arms = ", ".join(f"{n} (weights {weight_bytes(plans[n].lm) / GB:.2f} GB + KV {b / GB:.2f} GB)"
                     for n, (b, _) in est.items())
    alone = max(b for b, _ in est.values())
    raise UserError(f"workload.order: interleaved keeps every arm loaded at once: {arms}; their KV caches need "
                    f"{need / GB:.2f} GB together, more than the {have / GB:.2f} GB of {device} memory available",
                    f"set workload.order: sequential (one arm's KV at a time: {alone / GB:.2f} GB), "
                    "or lower the arms' kv_budget_tokens / batch sizes")
