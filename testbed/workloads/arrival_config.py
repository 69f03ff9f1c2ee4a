"""The workload's arrival section, validated at config load: its kinds, the keys each kind takes, and the
bounds on how long its schedule may run.

    arrival = ArrivalConfig.model_validate({"kind": "poisson", "rate": 2}, strict=True)
    schedule = arrival.schedule(n=len(items), duration_s=None)    # refuses a pass that takes over a day

A rate of 1e-6 requests/s (a typo for 1e6) passed and the run slept for days between requests. So a
finite rate's mean gap 1/rate is at most a day (at load), a pass's N requests are sent within a day
(N/rate, once the items are known) unless workload.duration_s cuts the run, in which case the first
request must be expected within it; duration_s itself is at most a week. rate: .inf (all at once) passes.
"""
import math
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from testbed.errors import UserError
from testbed.strict import Strict
from testbed.workloads.sweep import arrival_schedule, parse_rate

DAY_S = 86_400.0                # the longest one pass may take to send its requests
MAX_DURATION_S = 7 * DAY_S      # the longest workload.duration_s


def span_text(seconds: float) -> str:
    """`seconds` in the unit a person reads: 90 s, 2.5 hours, 11.6 days."""
    if seconds >= DAY_S:
        return f"{seconds / DAY_S:.3g} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.3g} hours"
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.3g} s"


def within_a_day(rate: float) -> float:
    """`rate`, or ValueError when its requests come more than a day apart on average."""
    if 1 / rate > DAY_S:
        raise ValueError(f"{rate:g} requests/s is one request every {span_text(1 / rate)} on average, beyond the "
                         f"1-day bound on a pass: give at least {1 / DAY_S:.3g} requests/s (a typo in the exponent?)")
    return rate


def within_a_week(duration_s: float | None) -> float | None:
    """`duration_s`, or ValueError beyond MAX_DURATION_S."""
    if duration_s is not None and duration_s > MAX_DURATION_S:
        raise ValueError(f"{duration_s:g} s is {span_text(duration_s)}, beyond the 7-day bound on a run: give at "
                         f"most {MAX_DURATION_S:g} (seconds)")
    return duration_s


class ArrivalConfig(Strict):
    """workload.arrival: how requests arrive (offline, poisson, concurrency, sweep, slo_search) and its keys."""
    kind: Literal["offline", "poisson", "concurrency", "sweep", "slo_search"] = "offline"
    rate: float | None = Field(None, gt=0, allow_inf_nan=True,
                               description="requests/s, for poisson (.inf: all at once)")
    rates: list[float | Literal["inf"]] | None = Field(
        None, description="offered requests/s per sweep step, for sweep ('inf' = all at once); sorted on load")
    burstiness: float = Field(1.0, gt=0, allow_inf_nan=True,
                              description="gamma shape; 1 = Poisson (vLLM's definition), .inf = constant gaps")
    n: int | None = Field(None, ge=1, description="requests in flight, for concurrency")
    # each level >= 1: a level of 0 sent nothing and the run waited forever
    concurrency: list[Annotated[int, Field(ge=1)]] | None = Field(
        None, description="requests in flight per sweep step (closed loop), for sweep instead of rates")
    max_concurrency: int | None = Field(None, ge=1, description="open loop: at most this many in flight; the "
                                        "rest wait in the client, their wait counted in TTFT (vLLM's --max-concurrency)")
    steps: int = Field(6, ge=1, le=20, description="slo_search: bisection steps between rates[0] and rates[1]")
    target: float = Field(0.9, gt=0, le=1, description="slo_search: share of requests that must meet every SLO")

    @field_validator("rates", mode="before")
    @classmethod
    def _sorted_rates(cls, v):
        """Positive numbers or 'inf', ascending, duplicates dropped; inf kept as the string 'inf' (JSON-safe)."""
        if v is None:
            return v
        if not isinstance(v, list):
            raise ValueError("rates must be a list of requests/s, e.g. [1, 2, 4, inf]")
        try:
            rates = sorted({parse_rate(r) for r in v})
        except (TypeError, ValueError):
            raise ValueError(f"rates must be positive requests/s or 'inf' (got {v!r}), e.g. [1, 2, 4, inf]") from None
        if rates:
            within_a_day(rates[0])      # the slowest; inf passes
        return ["inf" if math.isinf(r) else r for r in rates]

    @model_validator(mode="after")
    def _needs(self):
        if self.kind == "poisson" and self.rate is None:
            raise ValueError("arrival kind poisson needs rate (requests per second), e.g. {kind: poisson, rate: 2}")
        if self.kind == "concurrency" and self.n is None:
            raise ValueError("arrival kind concurrency needs n (requests in flight), e.g. {kind: concurrency, n: 4}")
        if self.kind == "sweep" and not (self.rates or self.concurrency):
            raise ValueError("arrival kind sweep needs rates (requests per second) or concurrency (requests in "
                             "flight), e.g. {kind: sweep, rates: [1, 2, inf]} or {kind: sweep, concurrency: [1, 4, 16]}")
        if self.kind == "sweep" and self.rates and self.concurrency:
            raise ValueError("arrival kind sweep takes rates or concurrency, not both")
        if self.kind != "sweep" and self.concurrency is not None:
            raise ValueError("concurrency (a list) is for kind sweep; for a fixed level use {kind: concurrency, n: N}")
        if self.kind == "slo_search" and (not self.rates or len(self.rates) != 2 or "inf" in self.rates):
            raise ValueError("arrival kind slo_search needs rates: [low, high], the bracket to bisect "
                             "(finite requests/s), e.g. {kind: slo_search, rates: [0.5, 8]}")
        if self.kind == "sweep" and self.rate is not None:
            raise ValueError("arrival kind sweep takes rates (a list), not rate; drop rate")
        if self.kind not in ("sweep", "slo_search") and self.rates is not None:
            raise ValueError(f"rates is for kind sweep; kind {self.kind} does not take it "
                             "(drop rates or set kind: sweep)")
        return self

    @field_validator("rate")
    @classmethod
    def _rate_within_a_day(cls, v: float | None) -> float | None:
        return v if v is None else within_a_day(v)

    def finite_rates(self) -> list[float]:
        """The finite requests/s this section offers: poisson's rate, a sweep's or an SLO search's rates."""
        rates = [self.rate] if self.kind == "poisson" else (self.rates or [])
        return [float(r) for r in rates if not math.isinf(float(r))]

    def check_duration(self, duration_s: float | None) -> None:
        """ValueError when a duration-bounded run ends before the slowest rate's first request is expected."""
        slowest = min(self.finite_rates(), default=math.inf)
        if duration_s is not None and 1 / slowest > duration_s:
            key = "rate" if self.kind == "poisson" else "rates"
            raise ValueError(f"duration_s {duration_s:g} ends before the first request is expected: at "
                             f"arrival.{key} {slowest:g} requests/s one comes every {span_text(1 / slowest)} on "
                             f"average; raise arrival.{key} or duration_s")

    def schedule(self, n: int, duration_s: float | None) -> list[tuple[float | None, dict]]:
        """The arrival config of each pass (one per rate for a sweep), or UserError when a pass would take over a
        day to send its `n` requests (the last goes at n/rate); a duration-bounded run stops sending at duration_s."""
        slowest = min(self.finite_rates(), default=math.inf)
        if duration_s is None and n / slowest > DAY_S:
            key = "rate" if self.kind == "poisson" else "rates"
            raise UserError(f"workload.arrival.{key}: {n} requests at {slowest:g} requests/s take "
                            f"{span_text(n / slowest)} to send (the last at n/rate), beyond the 1-day bound on a pass",
                            f"raise it to at least {n / DAY_S:.3g} requests/s, lower workload.limit, or set "
                            "workload.duration_s to stop sending sooner")
        return arrival_schedule(self.model_dump())
