"""One arm, ready to run: its model, engine factory and how an item becomes a request.

Request building happens when the request arrives, so the time spent in context steps
(retrieve, dedup, rerank, compress) and tokenisation counts in TTFT, as it would in a server.
Strategy sections that shape the prompt register a `Preparer` in PREPARERS under their
section name; sections the engine honours (speculative) are handed to the engine. A section
that runs several models (routing) may define hooks, called here by name and never by section:
`bind(plan, items, where)` at plan time, `new_engine(engine_cls, options, sections)`,
`lm_for(req)` (the model that answered), `record_fields(req)`, `aggregate(records)`, `details(records)`,
`against(row, details, arms, plain)` (cross-arm figures added to the arm's own summary row and details).
"""
import ctypes
import gc
import time
from typing import Any, Protocol

from testbed.config import ArmConfig, ExperimentConfig
from testbed.engines import ENGINES, Engine
from testbed.registry import Registry
from testbed.request import Request, SamplingParams
from testbed.workloads.items import Chunk, Item
from testbed.workloads.prompts import build_messages, render_prompt
from testbed.workloads.standard import raw_prompt


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
    def __init__(self, name: str, cfg: ExperimentConfig, lm: Any, progress: bool = True):
        self.name = name
        self.progress = progress        # progress bars for long plan-time work (a routing labelling pass)
        self.arm: ArmConfig = cfg.arms[name]
        self.lm = lm
        s = cfg.arm_sampling(name)
        self.sampling = SamplingParams(s.temperature, s.top_p, s.top_k, s.seed)
        self.max_new_tokens = self.arm.max_new_tokens or cfg.workload.max_new_tokens
        self.system_prompt = cfg.workload.system_prompt
        self.ignore_eos = cfg.workload.ignore_eos
        self._engine: Engine | None = None
        self.preparers = [PREPARERS.get(sec)(sec_cfg, lm) for sec, sec_cfg in self.arm.sections.items()
                          if sec in PREPARERS]

    def _hooks(self, name: str) -> list:
        return [getattr(sec, name) for sec in self.arm.sections.values() if hasattr(sec, name)]

    def bind(self, items: list[Item], check_only: bool = False) -> None:
        """Plan-time checks and loads of the sections (a routed arm's tiers, a speculative draft).
        check_only skips sections whose bind runs requests (`bind_runs_requests`: a routing labelling pass)."""
        for sec_name, sec in self.arm.sections.items():
            if check_only and getattr(sec, "bind_runs_requests", False):
                continue
            if hasattr(sec, "bind"):
                sec.bind(self, items, where=f"arms.{self.name}.{sec_name}")

    def check(self, items: list[Item]) -> None:
        """Pre-run checks of every prompt-shaping step that has a `check` against the workload
        (sections check themselves in `bind`)."""
        for prep in self.preparers:
            if hasattr(prep, "check"):
                prep.check(items, self.name)

    def aggregate(self, records: list[dict]) -> dict[str, float]:
        """Flat summary metrics from every prompt-shaping strategy and section of this arm."""
        out: dict[str, float] = {}
        for prep in self.preparers:
            out.update(type(prep).aggregate(records))
        for hook in self._hooks("aggregate"):
            out.update(hook(records))
        return out

    def details(self, records: list[dict]) -> dict:
        """Non-flat per-arm results (a router's sweep curve) for summary["details"]."""
        out: dict = {}
        for hook in self._hooks("details"):
            out.update(hook(records))
        return out

    def against(self, row: dict, details: dict, arms: dict, plain: dict) -> None:
        """Figures against the run's other arms (a routed arm against its top tier run alone) into this arm's
        summary `row` and `details`; arms: every arm's row; plain: {arm: (model id, engine)}, no sections."""
        for hook in self._hooks("against"):
            hook(row, details, arms, plain)

    def lm_for(self, req: Request) -> Any:
        """The model that produced req's output: a routed arm's tier, else the arm's model."""
        hooks = self._hooks("lm_for")
        return hooks[0](req) if hooks else self.lm

    def record_fields(self, req: Request) -> dict:
        out: dict = {}
        for hook in self._hooks("record_fields"):
            out.update(hook(req))
        return out

    def new_engine(self) -> Engine:
        """The engine for the arm's next pass (warm-up or timed): built once, then renewed, so an engine
        that takes seconds to start (vLLM) starts once per experiment; `close()` releases it."""
        cls = ENGINES.get(self.arm.engine)
        hooks = self._hooks("new_engine")     # a section that runs several models builds one engine per model
        if hooks:
            return hooks[0](cls, self.arm.options, self.arm.sections)
        self._engine = self._engine.renew() if self._engine else cls(self.lm, self.arm.options, self.arm.sections)
        return self._engine

    def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()
            del engine
            gc.collect()        # engines hold cycles: free their caches (KV, packed weights) before the next arm
            _trim_heap()

    def make_request(self, item: Item, arrival: float, request_id: str | None = None, shape: bool = True) -> Request:
        """The item as this arm's request; shape=False skips the prompt-shaping sections (pre-run checks)."""
        chunks, stats = list(item.chunks), {}
        for prep in self.preparers if shape else ():
            t = time.perf_counter()
            chunks, st = prep.prepare(item, chunks)
            stats[type(prep).__name__] = {**st, "seconds": time.perf_counter() - t}
        messages = build_messages(item, chunks, self.system_prompt)
        raw = raw_prompt(item, self.lm.tokenizer)      # standard workloads: the text as it is, no template
        text, ids = raw[:2] if raw else render_prompt(self.lm.tokenizer, messages)
        max_new = item.max_new_tokens or (raw and raw[2]) or self.max_new_tokens
        return Request(id=request_id or item.id, prompt_ids=ids, prompt_text=text, max_new_tokens=max_new,
                       sampling=self.sampling, arrival_time=arrival, item_id=item.id,
                       category=item.category, eos_token_ids=() if self.ignore_eos else self.lm.eos_token_ids,
                       ignore_eos=self.ignore_eos, stats=stats, messages=messages)


def _trim_heap() -> None:
    """Hand freed heap pages back to the OS (glibc keeps them), so the next arm's peak RSS is its own."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):     # not glibc: the pages stay until the allocator reuses them
        pass
