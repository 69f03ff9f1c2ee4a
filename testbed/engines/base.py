"""The engine protocol: add requests, step, report finished requests with per-token timestamps.

The runner owns arrival and the clock; an engine only makes tokens:

    engine = ENGINES.get("hf")(model, options)
    engine.add_request(req)
    while engine.has_unfinished():
        for done in engine.step(): ...

`step()` runs one scheduling unit (a static batch for `hf`, one iteration for `paged`) and
returns the requests that finished in it. Engines append tokens with `Request.append_tokens`
right after the device has produced them, so timestamps are honest.

Before any run directory exists the runner calls `check_arm` once per arm, so an arm that
cannot run the workload at all (a KV budget too small for one request, a draft model with
another tokenizer, a context budget the question alone fills) stops the run with a UserError.
"""
from abc import ABC, abstractmethod
from typing import Any, ClassVar


from testbed.errors import UserError
from testbed.registry import Registry
from testbed.request import Request
from testbed.strict import Strict


def context_overflow(lm: Any, req: Request) -> str | None:
    """Why `req` does not fit the model's context, or None."""
    limit = lm.max_context
    need = req.num_prompt_tokens + req.max_new_tokens
    if limit and need > limit:
        return (f"prompt {req.num_prompt_tokens} + max_new_tokens {req.max_new_tokens} = {need} tokens "
                f"exceeds the model's context of {limit}")
    return None


class KVLedger:
    """Per-step KV slot accounting: allocated vs holding tokens of live sequences (hf and paged alike)."""

    def __init__(self):
        self.allocated_sum = 0
        self.used_sum = 0
        self.peak_allocated = 0
        self.peak_used = 0

    def record(self, allocated: int, used: int) -> None:
        self.allocated_sum += allocated
        self.used_sum += used
        self.peak_allocated = max(self.peak_allocated, allocated)
        self.peak_used = max(self.peak_used, used)

    def metrics(self) -> dict[str, float]:
        if not self.allocated_sum:
            return {}
        return {"kv_cache_allocated_tokens": self.peak_allocated, "kv_cache_used_tokens": self.peak_used,
                "kv_waste_pct": 100.0 * (1 - self.used_sum / self.allocated_sum)}


class EngineOptions(Strict):
    """Engine-specific arm keys; each engine subclasses this (unknown keys are errors). No NaN or infinity:
    `timeout_s: .inf` passed its gt=0 bound, so a stalled stream was never cut; a subclass field that means
    infinity says so (allow_inf_nan=True)."""


class Engine(ABC):
    Options: ClassVar[type[EngineOptions]] = EngineOptions
    # engine-level sections (testbed.sections.Section.engine_level: speculative, routing) this engine
    # runs; any other on an arm of this engine is an error at config load (check_honoured). Sections
    # that act around the engine (context shapes the prompt) run on every engine.
    honours: ClassVar[frozenset[str]] = frozenset()
    # set True (a cascade's tiers) to have each finished request's `token_logprobs` filled where the
    # engine can do it from the logits it computes anyway; engines that cannot leave them None
    record_logprobs: bool = False
    # how often the runner samples the process's RSS during a pass: 10 ms catches an in-process
    # engine's peaks; an HTTP client's RSS is not the served model's and needs no such rate
    memory_sample_s: ClassVar[float] = 0.01

    def __init__(self, model: Any, options: EngineOptions, sections: dict[str, Any] | None = None):
        self.model = model          # a testbed.models.LoadedModel
        self.options = options
        self.sections = sections or {}   # validated arm sections (speculative, ...) the engine honours
        self.rejected: list[Request] = []   # failed in add_request (reject_if_invalid); the next step() returns them

    @classmethod
    def check_honoured(cls, sections: dict[str, Any], where: str) -> None:
        """Raise UserError naming the arm and the engine-level section this engine cannot honour (at config
        load, before the sections are validated); `sections` maps names to section classes or instances."""
        for name, section in sections.items():
            if getattr(section, "engine_level", False) and name not in cls.honours:
                raise UserError(f"{where}.{name}: engine {cls.name()!r} does not honour a {name} section",
                                f"engines honouring {name}: {', '.join(honouring(name)) or 'none'}; "
                                f"or drop {where}.{name}")

    @classmethod
    def check_sections(cls, sections: dict[str, Any], where: str) -> None:
        """Raise UserError when a validated section asks for what this engine cannot do (at config load)."""
        cls.check_honoured(sections, where)

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this engine cannot run on this machine (a package missing, an ISA), or None."""
        return None

    @classmethod
    def install_hint(cls) -> str:
        """How to make this engine available, for the line that reports it missing."""
        return "use another engine"

    @classmethod
    def process_exclusive(cls, options: EngineOptions) -> bool:
        """True when two engines of this kind cannot be alive in one process at once (process-wide state):
        interleaved order, which keeps every arm's engine loaded, refuses two such arms before the run."""
        return False

    @classmethod
    def name(cls) -> str:
        return next((n for n in ENGINES.names() if ENGINES.get(n) is cls), cls.__name__)

    @classmethod
    def held_memory(cls, lm: Any, options: EngineOptions, sections: dict[str, Any], device: Any) -> dict[tuple, int]:
        """Bytes the engine keeps for as long as it is loaded, beyond the weights the run loads once, keyed by
        what they are: ("kv", ...) for a KV pool allocated at start (interleaved arms hold every one at once),
        other keys for private copies of the weights, keyed so that a copy several engines share counts once.
        No "kv" key: the engine's cache lives only while a batch runs (testbed/metrics/footprint.py sizes it)."""
        return {}

    @classmethod
    def check_arm(cls, lm: Any, options: EngineOptions, sections: dict[str, Any], requests: list[Request],
                  items: list | None = None) -> None:
        """Raise UserError when this arm cannot run the workload at all; called before the run starts.

        `requests` are the arm's requests as the workload gives them, before any prompt-shaping
        section runs (context steps mostly drop or cut chunks, so lengths are usually upper bounds;
        retrieval from a corpus can add chunks, which the engine then meets at run time);
        `items` are the workload items they came from (same order). A request beyond the model's
        context is not an arm error: it fails alone at run time. Engines override this and call
        super(); every section's `check_arm(lm, requests, items)` hook (testbed.sections) runs here,
        so a section plugs in its own checks.
        """
        for section in sections.values():
            section.check_arm(lm, requests, items or [])

    @abstractmethod
    def add_request(self, req: Request) -> None: ...

    @abstractmethod
    def step(self) -> list[Request]:
        """Advance by one scheduling unit; return the requests that finished (or failed) in it."""

    @abstractmethod
    def has_unfinished(self) -> bool: ...

    def stats(self) -> dict[str, float]:
        """Engine-level summary metrics (KV accounting, speculative totals), flat contract keys."""
        return {}

    def abort_request(self, request_id: str) -> Request | None:
        """Drop an unfinished request (its client went away); return it, or None if not held here.

        Called between steps, from the thread that calls step(). A waiting request leaves the
        queue; a running one frees its KV (blocks, cache rows). The engine never returns an
        aborted request from a later step(); the caller marks it failed. Default: cannot abort.
        """
        return None

    def validate_request(self, req: Request) -> str | None:
        """Why this request cannot run here (too long for the context, ...), or None."""
        return context_overflow(self.model, req)

    def reject_if_invalid(self, req: Request) -> bool:
        """Fail a request that cannot run here and queue it in `self.rejected`; True when rejected."""
        reason = self.validate_request(req)
        if reason:
            req.fail(reason)
            self.rejected.append(req)
        return bool(reason)

    def take_rejected(self) -> list[Request]:
        """The requests rejected since the last step, handed back once (a step() starts with these)."""
        done, self.rejected = self.rejected, []
        return done

    def abort_rejected(self, request_id: str) -> Request | None:
        """Drop a rejected request not yet returned by step(); return it, or None."""
        req = next((r for r in self.rejected if r.id == request_id), None)
        if req is not None:
            self.rejected.remove(req)
        return req

    def renew(self) -> "Engine":
        """An engine for the arm's next timed run, with empty queues and counters. Default: a new one
        (cheap for in-process engines); an engine that is slow to start resets itself instead."""
        self.close()
        return type(self)(self.model, self.options, self.sections)

    def close(self) -> None:
        """Release what the engine holds (worker processes, caches); safe to call twice."""

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


ENGINES: Registry[type[Engine]] = Registry("engine")


def honouring(section: str) -> list[str]:
    return [n for n in ENGINES.names() if section in ENGINES.get(n).honours]
