"""Lossless check (DESIGN §4): does an arm's greedy output equal the baseline's, and where does it first differ?

    compare(base_ids, arm_ids)    # {"match_baseline": False, "first_divergence": 7}

Under an interleaved order an arm can finish a block before the baseline runs it (a rotated
block), so `rematch` fills those records once the baseline's outputs are known.
"""

UNCOMPARED = {"match_baseline": None, "first_divergence": None}


def compare(base: list[int] | None, out: list[int]) -> dict:
    if base is None:
        return dict(UNCOMPARED)
    div = next((i for i, (a, b) in enumerate(zip(base, out)) if a != b), None)
    if div is None and len(base) != len(out):
        div = min(len(base), len(out))
    return {"match_baseline": div is None, "first_divergence": div}


def rematch(records: list[dict], baseline: str, baseline_outputs: dict[str, list[int]]) -> int:
    """Fill the match of every non-baseline record left uncompared whose baseline output is now known; returns how many."""
    late = [r for r in records if r["arm"] != baseline and r.get("match_baseline") is None
            and r["request_id"] in baseline_outputs]
    for r in late:
        r.update(compare(baseline_outputs[r["request_id"]], r["output_ids"]))
    return len(late)
