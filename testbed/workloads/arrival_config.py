"""The workload's arrival section, validated at config load: its kinds and the keys each kind takes.

    arrival = ArrivalConfig.model_validate({"kind": "poisson", "rate": 2}, strict=True)
"""
import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from testbed.workloads.sweep import parse_rate


class ArrivalConfig(BaseModel):
    """workload.arrival: how requests arrive (offline, poisson, concurrency, sweep, slo_search) and its keys."""
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)   # as config.Strict
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
