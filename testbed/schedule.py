"""In what order the arms run: interleaved blocks, so drift of the machine cannot decide a ratio.

    passes = plan_passes(["base", "new"], items, schedule, repeats=1, order="interleaved", block=8)
    # offline: base[0:8] new[0:8] | new[8:16] base[8:16] | base[16:24] new[16:24]  (ABBA...)

A machine that slows down during a run (another job starts, a laptop throttles) slows whichever
arm runs then. Offline workloads are split into blocks of items; under `interleaved` the arms
alternate block by block, each block's arm order rotated by one (ABBA for two arms, a rotated
Latin square for more), so a linear drift lands on every arm equally and each block gives a
paired ratio. Arrival-driven workloads (poisson, concurrency, sweep) cannot be cut without
changing the load they offer, so there the rotation happens per repeat (and per rate of a
sweep): AB, BA, AB ... `sequential` runs each arm's blocks back to back (the old order), with
the same blocks, so the two orders give the same batches and the same greedy outputs.
"""
import math
from dataclasses import dataclass

# The most blocks an offline pass is cut into by default: enough pairs for a bootstrap interval,
# few enough that each block still fills the widest arm's batch.
TARGET_BLOCKS = 12


@dataclass
class Pass:
    """One arm over one block of items, at one repeat and offered rate (None: not a sweep)."""
    arm: str
    repeat: int
    rate: float | None
    arrival: dict
    block: int            # index of the block within the repeat (rate index for arrival-driven passes)
    items: list

    @property
    def first(self) -> bool:
        """The arm's first block of its (repeat, rate) pass: the one its warm-up runs before."""
        return self.block == 0 or self.rate is not None


def arm_width(options) -> int:
    """How many requests an arm runs at once: its static batch, sequence limit or HTTP concurrency; else 1."""
    keys = ("batch_size", "max_num_seqs", "concurrency")
    return int(next((getattr(options, k) for k in keys if getattr(options, k, None)), 1))


def auto_block_size(n_items: int, widths: list[int]) -> int:
    """Items per block: a multiple of every arm's batch width (each block fills whole batches, so a static
    batch holds the same requests in either order), rounded up to cut the pass into ~TARGET_BLOCKS blocks."""
    base = math.lcm(*widths) if widths else 1
    want = math.ceil(n_items / TARGET_BLOCKS)
    return max(1, min(n_items, base * math.ceil(want / base)))


def rotated(arms: list[str], k: int) -> list[str]:
    """Arm order of the k-th round: rotated by k (two arms: AB, BA, AB ...; n arms: a Latin square)."""
    k %= max(1, len(arms))
    return arms[k:] + arms[:k]


def search_round(arms: list[str], repeats: int, k: int) -> list[tuple[str, int]]:
    """The (arm, repeat) searches of an SLO search's k-th lockstep round, in the order they probe: each
    repeat's arms rotated by k + repeat, as blocks are."""
    return [(a, r) for r in range(repeats) for a in rotated(arms, k + r)]


def schedule_kind(schedule: list) -> str | None:
    """The arrival kind of a single-entry schedule (a sweep has one entry per rate: None)."""
    return schedule[0][1].get("kind") if len(schedule) == 1 else None


def is_blocked(schedule: list[tuple[float | None, dict]]) -> bool:
    """Offline workloads are cut into blocks; arrival-driven ones run whole."""
    return len(schedule) == 1 and schedule[0][0] is None and schedule[0][1].get("kind") == "offline"


def plan_passes(arms: list[str], items: list, schedule: list[tuple[float | None, dict]], repeats: int,
                order: str, block: int) -> list[Pass]:
    """Every pass of the run, in the order they run."""
    if is_blocked(schedule):
        arrival = schedule[0][1]
        chunks = [items[i:i + block] for i in range(0, len(items), block)]
        rounds = [(r, b, None, arrival, chunk) for r in range(repeats) for b, chunk in enumerate(chunks)]
    else:
        rounds = [(r, i, rate, arrival, items) for r in range(repeats) for i, (rate, arrival) in enumerate(schedule)]
    if order == "sequential" and is_blocked(schedule):     # arm-major within each repeat
        by_repeat = [[x for x in rounds if x[0] == r] for r in range(repeats)]
        return [Pass(a, r, rate, arr, b, chunk) for group in by_repeat for a in arms
                for (r, b, rate, arr, chunk) in group]
    if order == "sequential":                                  # each rate: the arms in config order
        return [Pass(a, r, rate, arr, b, chunk) for (r, b, rate, arr, chunk) in rounds for a in arms]
    return [Pass(a, r, rate, arr, b, chunk) for (r, b, rate, arr, chunk) in rounds for a in rotated(arms, r + b)]


def order_info(order: str, schedule: list, block: int, n_items: int, repeats: int) -> dict:
    """summary["order"]: the order, whether items were cut into blocks, the block size, and the report's line."""
    blocked = is_blocked(schedule)
    return {"order": order, "blocked": blocked, "block_size": block if blocked else None,
            "n_blocks": math.ceil(n_items / block) if blocked else None,
            "text": describe(order, schedule, block, n_items, repeats)}


def describe(order: str, schedule: list, block: int, n_items: int, repeats: int) -> str:
    """The report's line on the order used."""
    if schedule_kind(schedule) == "slo_search":
        how = ("every arm's and repeat's search in lockstep, one probe each per round, the order rotated "
               "per round and repeat" if order == "interleaved" else "each arm's search to its end, one after another")
        return f"Order: **{order}** (SLO search: {how})."
    if not is_blocked(schedule):
        how = "arm order rotated per repeat and per rate (AB, BA, ...)" if order == "interleaved" \
            else "each arm's whole pass back to back"
        note = "" if repeats > 1 or order == "sequential" else \
            "; with one repeat and one rate the arms still ran one after the other: set repeats >= 2 to alternate"
        return f"Order: **{order}** (arrival-driven workload: {how}{note})."
    n_blocks = math.ceil(n_items / block)
    if n_blocks == 1 and order == "interleaved":     # nothing to alternate within a repeat: say so
        how = ("the arm order rotated per repeat (AB, BA, ...)" if repeats > 1 else
               "so the arms ran one after the other; set workload.block_size (or repeats >= 2) to alternate")
        return f"Order: **{order}**, one block of {n_items} items (the widest arm's batch covers them): {how}."
    how = ("arms alternate block by block, the order rotated each block (ABBA ...)" if order == "interleaved"
           else "each arm runs all its blocks back to back")
    return f"Order: **{order}**, {n_blocks} blocks of up to {block} items per repeat; {how}."
