"""The base of every config section: unknown keys are errors, and so are NaN and infinity unless a field says
so (allow_inf_nan=True). Its own module so that sections outside config.py (arrival, engine options) share it
without importing config.py, which imports them.

    class ArrivalConfig(Strict): ...
"""
from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    # no NaN or infinity unless a field says so: cost: {usd_per_hour: .inf} printed Infinity into the
    # result JSON, and a NaN passes every bound-free field
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
