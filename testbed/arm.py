"""One arm, ready to run: its model, engine factory and how an item becomes a request.

Request building happens when the request arrives, so the time spent in context steps
(retrieve, dedup, rerank, compress) and tokenisation counts in TTFT, as it would in a server.
Strategy sections that shape the prompt register a `Preparer` in PREPARERS under their
section name; sections the engine honours (speculative) are handed to the engine.
"""
import time
from typing import Any, Protocol

from testbed.config import ArmConfig, ExperimentConfig
from testbed.engines import ENGINES, Engine
from testbed.registry import Registry
from testbed.request import Request, SamplingParams
from testbed.workloads.items import Chunk, Item
from testbed.workloads.prompts import build_messages, render_prompt


class Preparer(Protocol):
    """Turns an item's chunks into the chunks the model sees; returns them and its stats.

    Its per-request stats land in record["stats"][<class name>]; `aggregate(records)` turns an
    arm's records into flat summary metrics (duplicate_rate_before, context_tokens_saved_pct, ...).
    """

    def prepare(self, item: Item, chunks: list[Chunk]) -> tuple[list[Chunk], dict[str, Any]]: ...

    @classmethod
    def aggregate(cls, records: list[dict]) -> dict[str, float]: ...


PREPARERS: Registry[type] = Registry("prompt-shaping section")   # section name -> class(section_cfg, lm)


class ArmPlan:
    def __init__(self, name: str, cfg: ExperimentConfig, lm: Any):
        self.name = name
        self.arm: ArmConfig = cfg.arms[name]
        self.lm = lm
        s = cfg.arm_sampling(name)
        self.sampling = SamplingParams(s.temperature, s.top_p, s.top_k, s.seed)
        self.max_new_tokens = self.arm.max_new_tokens or cfg.workload.max_new_tokens
        self.system_prompt = cfg.workload.system_prompt
        self.preparers = [PREPARERS.get(sec)(sec_cfg, lm) for sec, sec_cfg in self.arm.sections.items()
                          if sec in PREPARERS]

    def aggregate(self, records: list[dict]) -> dict[str, float]:
        """Flat summary metrics from every prompt-shaping strategy of this arm."""
        out: dict[str, float] = {}
        for prep in self.preparers:
            out.update(type(prep).aggregate(records))
        return out

    def new_engine(self) -> Engine:
        return ENGINES.get(self.arm.engine)(self.lm, self.arm.options, self.arm.sections)

    def make_request(self, item: Item, arrival: float, request_id: str | None = None, shape: bool = True) -> Request:
        """The item as this arm's request; shape=False skips the prompt-shaping sections (pre-run checks)."""
        chunks, stats = list(item.chunks), {}
        for prep in self.preparers if shape else ():
            t = time.perf_counter()
            chunks, st = prep.prepare(item, chunks)
            stats[type(prep).__name__] = {**st, "seconds": time.perf_counter() - t}
        text, ids = render_prompt(self.lm.tokenizer, build_messages(item, chunks, self.system_prompt))
        return Request(id=request_id or item.id, prompt_ids=ids, prompt_text=text,
                       max_new_tokens=item.max_new_tokens or self.max_new_tokens,
                       sampling=self.sampling, arrival_time=arrival, item_id=item.id,
                       category=item.category, eos_token_ids=self.lm.eos_token_ids, stats=stats)
