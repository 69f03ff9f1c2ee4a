"""Can the arms coexist in memory? Interleaving keeps every arm's engine loaded at once.

    check_coexist(plans, items, device)    # UserError naming the arms and the estimate, or None

Estimate per arm: its model's weights (loaded once before the run in either order, shared by arms
on the same model) plus its KV cache. An engine that keeps memory for as long as it stays loaded
says how much in one keyed hook (`Engine.held_memory`). Its "kv" entry is a pool allocated at
start (paged's KV pool, vLLM's KV space or its share of the GPU), so interleaving holds every such
pool at once; an engine without one (static batching) has a cache that lives only while a batch
runs (its batch width x (longest prompt + max_new_tokens) tokens), so only the largest of those is
ever held. Its other entries are copies of the weights the engine makes for itself (vLLM on the
CPU loads its own, and its draft's; the paged runner packs one per model, under one key, so it
counts once). The weights are already resident when this runs, so what must fit into the memory
still available is every held pool, the largest transient cache, and those copies. Engines that
need the process to themselves (vLLM in process) cannot be interleaved at all.
"""
from typing import Any

import psutil
import torch

from testbed.engines import ENGINES
from testbed.engines.vllm_args import kv_bytes_per_token
from testbed.errors import UserError
from testbed.schedule import arm_width

GB = 1e9


def held_memory(plan: Any, device: Any) -> dict[tuple, int]:
    """What the arm's engine keeps while loaded, keyed (Engine.held_memory)."""
    return ENGINES.get(plan.arm.engine).held_memory(plan.lm, plan.arm.options, plan.arm.sections, device)


def kv_estimate(plan: Any, items: list, device: Any) -> tuple[int, bool]:
    """(KV bytes, whether the engine holds them while loaded) for one arm."""
    pools = [b for key, b in held_memory(plan, device).items() if key[0] == "kv"]
    if pools:
        return sum(pools), True
    o = plan.arm.options
    longest = max((len(plan.make_request(it, 0.0, it.id, shape=False).prompt_ids) for it in items), default=0)
    return arm_width(o) * (longest + plan.max_new_tokens) * kv_bytes_per_token(plan.lm), False


def available_bytes(device: Any) -> int:
    if str(device).startswith("cuda"):
        return torch.cuda.mem_get_info(torch.device(device))[0]
    return psutil.virtual_memory().available


def own_memory(plans: dict[str, Any], device: Any) -> dict[str, int]:
    """Per arm, what its engine holds beyond the shared model and the KV (vLLM's own copy of the weights, the
    paged runner's packed copy); a copy several arms share is charged to the first of them."""
    seen, out = set(), {}
    for name, plan in plans.items():
        copies = {key: b for key, b in held_memory(plan, device).items() if key[0] != "kv"}
        out[name] = sum(b for key, b in copies.items() if key not in seen)
        seen.update(copies)
    return out


def check_exclusive(plans: dict[str, Any]) -> None:
    """Engines that cannot share a process (vLLM in process) cannot all stay loaded at once."""
    alone = [n for n, p in plans.items() if ENGINES.get(p.arm.engine).process_exclusive(p.arm.options)]
    if len(alone) > 1:
        raise UserError(f"workload.order: interleaved keeps every arm loaded at once, but arms {', '.join(alone)} "
                        "each need the process to themselves (vLLM in process)",
                        "set workload.order: sequential, or multiprocessing: true on those arms")


def check_coexist(plans: dict[str, Any], items: list, device: Any) -> None:
    """Raise UserError when the arms cannot be held at once (interleaved order): their held KV pools and
    their engines' private weight copies against the memory available, and engines that need a process alone."""
    check_exclusive(plans)
    est = {name: kv_estimate(plan, items, device) for name, plan in plans.items()}
    extra = own_memory(plans, device)
    held = sum(b for b, fixed in est.values() if fixed) + sum(extra.values())
    transient = max((b for b, fixed in est.values() if not fixed), default=0)
    need, have = held + transient, available_bytes(device)
    if need <= have:
        return
    arms = ", ".join(f"{n} (weights {plans[n].lm.weight_bytes / GB:.2f} GB shared + {extra[n] / GB:.2f} GB own "
                     f"+ KV {b / GB:.2f} GB)" for n, (b, _) in est.items())
    alone = max(b + extra[n] for n, (b, _) in est.items())
    raise UserError(f"workload.order: interleaved keeps every arm loaded at once: {arms}; beyond the shared weights "
                    f"they need {need / GB:.2f} GB together, more than the {have / GB:.2f} GB of {device} memory "
                    f"available", f"set workload.order: sequential (one arm at a time: {alone / GB:.2f} GB), "
                    "or lower the arms' kv_budget_tokens / batch sizes")
