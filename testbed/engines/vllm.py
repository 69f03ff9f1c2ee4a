"""The `vllm` engine: vLLM's LLMEngine in process (GPU only; `pip install testbed[vllm]`).

    arms:
      vllm: {engine: vllm, gpu_memory_utilization: 0.5, kv_budget_tokens: 8192}

Testbed requests go in as token ids (so every arm sees the same prompt tokens) with their
sampling parameters; each `step()` reads vLLM's cumulative outputs and stamps the new tokens
when the host receives them, which is what TTFT/ITL mean for the other engines too. KV use
comes from vLLM's own gauge (`vllm:kv_cache_usage_perc`, formerly `gpu_cache_usage_perc`)
where the version exposes it. Not run on a GPU in this repository's CI: only the mapping is
tested, against a fake `vllm` module (tests/test_vllm_engine.py).
"""
import time
from pathlib import Path

from pydantic import Field

from testbed.engines.base import ENGINES, Engine, EngineOptions
from testbed.errors import UserError
from testbed.request import Request, SamplingParams

USAGE_GAUGES = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")


class VLLMOptions(EngineOptions):
    gpu_memory_utilization: float = Field(0.5, gt=0, le=1, description="share of GPU memory vLLM may take")
    kv_budget_tokens: int | None = Field(None, ge=1, description="fix the KV cache size (num_gpu_blocks_override)")
    block_size: int = Field(16, ge=1)
    max_num_seqs: int = Field(256, ge=1)
    max_num_batched_tokens: int | None = Field(None, ge=1)
    enable_prefix_caching: bool = True
    enforce_eager: bool = False


def import_vllm():
    """The vllm module, or a UserError saying how to get it."""
    try:
        import vllm
    except ImportError:
        raise UserError("engine vllm: the vllm package is not installed",
                        "pip install 'testbed[vllm]' on a machine with an NVIDIA GPU, or use engine: paged") from None
    return vllm


def require_gpu() -> None:
    import torch
    if not torch.cuda.is_available():
        raise UserError("engine vllm: no CUDA device is present (vLLM runs on GPUs only)",
                        "run on a GPU machine, or use engine: paged on the CPU")


def model_path(lm) -> str:
    """A checkpoint vLLM can load: the loaded model's directory, its hub id, or a saved random model."""
    if lm.source.startswith("hub:"):
        return lm.source[4:]
    if lm.source.startswith("random:"):
        from testbed.models import cache_dir
        out = cache_dir() / "random" / lm.source.split(":", 1)[1]
        if not (out / "config.json").exists():
            lm.model.save_pretrained(out)
            lm.tokenizer.save_pretrained(out)
        return str(out)
    return str(Path(lm.source))


def to_vllm_sampling(vllm, req: Request):
    """vLLM SamplingParams for a testbed request (top_k 0 -> -1, vLLM's 'off'; EOS -> stop ids)."""
    sp: SamplingParams = req.sampling
    return vllm.SamplingParams(temperature=sp.temperature, top_p=sp.top_p, top_k=sp.top_k or -1,
                               seed=None if sp.greedy else sp.seed, max_tokens=req.max_new_tokens,
                               stop_token_ids=list(req.eos_token_ids), ignore_eos=not req.eos_token_ids,
                               detokenize=False)


def engine_args(vllm, lm, o: VLLMOptions):
    kw = dict(model=model_path(lm), dtype=str(lm.dtype).removeprefix("torch."), seed=0,
              gpu_memory_utilization=o.gpu_memory_utilization, block_size=o.block_size,
              max_num_seqs=o.max_num_seqs, enable_prefix_caching=o.enable_prefix_caching,
              enforce_eager=o.enforce_eager)
    if o.max_num_batched_tokens:
        kw["max_num_batched_tokens"] = o.max_num_batched_tokens
    if o.kv_budget_tokens:
        kw["num_gpu_blocks_override"] = max(1, o.kv_budget_tokens // o.block_size)
    return vllm.EngineArgs(**kw)


@ENGINES.register("vllm")
class VLLMEngine(Engine):
    Options = VLLMOptions

    def __init__(self, model, options: VLLMOptions, sections=None):
        super().__init__(model, options, sections)
        self.vllm = import_vllm()
        require_gpu()
        self.engine = self.vllm.LLMEngine.from_engine_args(engine_args(self.vllm, model, options))
        self.live: dict[str, Request] = {}
        self.rejected: list[Request] = []
        self.peak_usage = None
        self.peak_seqs = 0

    def add_request(self, req: Request) -> None:
        if self.reject_if_invalid(req):
            return
        req.status = "running"
        self.live[req.id] = req
        self.engine.add_request(req.id, {"prompt_token_ids": list(req.prompt_ids)}, to_vllm_sampling(self.vllm, req))

    def has_unfinished(self) -> bool:
        return bool(self.rejected or self.live)

    def step(self) -> list[Request]:
        done, self.rejected = self.rejected, []
        self.peak_seqs = max(self.peak_seqs, len(self.live))
        outputs = self.engine.step()
        now = time.perf_counter()
        for out in outputs:
            req = self.live.get(out.request_id)
            if req is None:
                continue
            if self._absorb(req, out, now):
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

    def _sample_usage(self) -> None:
        """Peak of vLLM's KV usage gauge (0..1), where this vLLM version exposes get_metrics()."""
        get = getattr(self.engine, "get_metrics", None)
        if get is None:
            return
        for m in get():
            if getattr(m, "name", None) in USAGE_GAUGES:
                self.peak_usage = max(self.peak_usage or 0.0, float(m.value))

    def stats(self) -> dict[str, float]:
        out: dict[str, float] = {"max_concurrent_seqs": self.peak_seqs}
        if self.peak_usage is not None:
            out["vllm_kv_cache_usage_peak_pct"] = 100.0 * self.peak_usage
        blocks = getattr(getattr(self.engine, "cache_config", None), "num_gpu_blocks", None)
        if blocks:
            out["kv_capacity_tokens"] = blocks * self.options.block_size
        return out

    def close(self) -> None:
        self.engine = None
