"""One arm, ready to run: its model, engine factory and how an item becomes a request.

Request building happens when the request arrives, so the time spent in context steps
(retrieve, dedup, rerank, compress) and tokenisation counts in TTFT, as it would in a server.
The arm's strategy sections (testbed/sections.py) act through their hooks, called here for
every section alike and never by a section's name.
"""
import ctypes
import gc
import time
from dataclasses import dataclass
from typing import Any

from testbed.config import ArmConfig, ExperimentConfig
from testbed.engines import ENGINES, Engine
from testbed.request import Request, SamplingParams
from testbed.workloads.items import Item
from testbed.workloads.prompts import build_messages, render_prompt
from testbed.workloads.standard import raw_prompt


@dataclass(frozen=True)
class ArmSetting:
    """What decides an arm's answer besides model, prompt and sections; arms with equal settings stand in
    for each other (the diagnosis's probes, keyed by these)."""
    temperature: float
    top_p: float
    top_k: int
    seed: int | None
    max_new_tokens: int
    system_prompt: str | None

    def sampling(self) -> SamplingParams:
        return SamplingParams(self.temperature, self.top_p, self.top_k, self.seed)


def arm_settings(cfg: ExperimentConfig) -> dict[str, ArmSetting]:
    """Every arm's settings, the config's defaults applied."""
    out = {}
    for name, arm in cfg.arms.items():
        s = cfg.arm_sampling(name)
        out[name] = ArmSetting(s.temperature, s.top_p, s.top_k, s.seed,
                               arm.max_new_tokens or cfg.workload.max_new_tokens, cfg.workload.system_prompt)
    return out


class ArmPlan:
    def __init__(self, name: str, cfg: ExperimentConfig, lm: Any, progress: bool = True, shared: dict | None = None):
        self.name = name
        self.progress = progress        # progress bars for long plan-time work (a routing labelling pass)
        self.shared = {} if shared is None else shared   # state the experiment's arms share (loaded models, labels)
        self.arm: ArmConfig = cfg.arms[name]
        self.lm = lm
        setting = arm_settings(cfg)[name]
        self.sampling = setting.sampling()
        self.max_new_tokens = setting.max_new_tokens
        self.system_prompt = setting.system_prompt
        self.ignore_eos = cfg.workload.ignore_eos
        self._engine: Engine | None = None
        self.sections = list(self.arm.sections.values())
        self.preparers = [p for sec in self.sections if (p := sec.preparer(lm)) is not None]

    def bind(self, items: list[Item], check_only: bool = False) -> None:
        """Plan-time checks and loads of the sections (a routed arm's tiers, a speculative draft).
        check_only skips sections whose bind runs requests (`bind_runs_requests`: a routing labelling pass)."""
        for sec_name, sec in self.arm.sections.items():
            if check_only and sec.bind_runs_requests:
                continue
            sec.bind(self, items, where=f"arms.{self.name}.{sec_name}")

    def check(self, items: list[Item]) -> None:
        """Pre-run checks of every prompt-shaping step against the workload (sections check
        themselves in `bind` and `check_arm`)."""
        for prep in self.preparers:
            prep.check(items, self.name)

    def aggregate(self, records: list[dict]) -> dict[str, float]:
        """Flat summary metrics from every section of this arm."""
        out: dict[str, float] = {}
        for sec in self.sections:
            out.update(sec.aggregate(records))
        return out

    def details(self, records: list[dict]) -> dict:
        """Non-flat per-arm results (a router's sweep curve) for summary["details"]."""
        out: dict = {}
        for sec in self.sections:
            out.update(sec.details(records))
        return out

    def against(self, row: dict, details: dict, arms: dict, plans: dict[str, "ArmPlan"]) -> None:
        """Figures against the run's other arms (a routed arm against its top tier run alone) into this arm's
        summary `row` and `details`; arms: every arm's row; plans: every arm's plan."""
        for sec in self.sections:
            sec.against(row, details, arms, plans)

    def lm_for(self, req: Request) -> Any:
        """The model that produced req's output: a routed arm's tier, else the arm's model."""
        return next((lm for sec in self.sections if (lm := sec.lm_for(req)) is not None), self.lm)

    def record_fields(self, req: Request) -> dict:
        out: dict = {}
        for sec in self.sections:
            out.update(sec.record_fields(req))
        return out

    def new_engine(self) -> Engine:
        """The engine for the arm's next pass (warm-up or timed): built once, then renewed, so an engine
        that takes seconds to start (vLLM) starts once per experiment. A section that runs several models
        (routing) builds a fresh one each time; the engine it replaces is closed. `close()` releases the last."""
        cls = ENGINES.get(self.arm.engine)
        built = next((e for sec in self.sections
                      if (e := sec.new_engine(cls, self.arm.options, self.arm.sections)) is not None), None)
        if built is not None:
            self.close()
            self._engine = built
        else:
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
        for sec in self.sections:
            messages = sec.messages(messages)
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
