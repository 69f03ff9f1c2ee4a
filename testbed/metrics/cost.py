"""Cost from the device price and the arm's wall time (DESIGN §4).

    cost_per_million_output_tokens_usd(2.49, wall_s=120, output_tokens=30_000)  # -> 2.7667

A figure that cannot be computed (no tokens, no successes) is None, so the summary leaves it out;
a price of 0 still gives 0.
"""


def arm_cost_usd(usd_per_hour: float, wall_s: float) -> float:
    return usd_per_hour * wall_s / 3600.0


def cost_per_million_output_tokens_usd(usd_per_hour: float, wall_s: float, output_tokens: int) -> float | None:
    if output_tokens <= 0:
        return None
    return arm_cost_usd(usd_per_hour, wall_s) / output_tokens * 1e6


def cost_per_success_usd(usd_per_hour: float, wall_s: float, n_success: int) -> float | None:
    if n_success <= 0:
        return None
    return arm_cost_usd(usd_per_hour, wall_s) / n_success
