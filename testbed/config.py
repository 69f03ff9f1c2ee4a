"""Typed experiment config, validated at load: errors name the YAML path and the fix.

    cfg = load_config("configs/quickstart.yaml", overrides=["workload.limit=4"], device="cpu")

An arm is `engine` plus common keys (model, sampling, max_new_tokens) plus strategy sections
(any key registered in testbed.sections.SECTIONS: speculative, context, routing, ...), each
validated by its class, plus engine-specific keys validated by the engine's `Options` model.
The registries fill when the strategies are imported: callers run testbed.plugins.load_plugins()
first (this module imports no strategy).
"""
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from testbed.config_errors import describe_errors
from testbed.engines.base import ENGINES
from testbed.errors import UserError
from testbed.overrides import merge, with_overrides
from testbed.request import SEED_LIMIT
from testbed.safe_yaml import load_yaml
from testbed.sections import SECTIONS
from testbed.strict import Strict
from testbed.workloads.arrival_config import ArrivalConfig, within_a_week
from testbed.workloads.standard import RandomSpec

# numpy's legacy RandomState (the arrival gaps, as vLLM's client draws them) and scikit-learn take
# seeds in [0, 2^32) only; a seed outside it used to pass validation and crash the run
NumpySeed = Annotated[int, Field(ge=0, lt=2 ** 32, description="in [0, 2^32)")]


class ModelSpec(Strict):
    id: str = Field(description="hub id, local dir, .gguf file, alias (smollm2-135m) or random:<preset>")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    revision: str | None = None
    trust_remote_code: bool = Field(False, description="run Python code shipped with the model (auto_map); "
                                                      "off unless set: a model directory is untrusted input")

    @field_validator("id")
    @classmethod
    def _some_id(cls, v):
        if not v.strip():       # "" would be read as the working directory: ". has no config.json"
            raise ValueError("an empty model id; give an alias (smollm2-135m), a hub id, a directory or random:<preset>")
        return v


class SamplingConfig(Strict):
    temperature: float = Field(0.0, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0)
    seed: int = Field(0, ge=0, lt=SEED_LIMIT, description="in [0, 2^63)")


class WorkloadConfig(Strict):
    dataset: str = Field("golden", description="golden, golden/<category>, or a path: JSONL, SQuAD JSON, HotpotQA JSON")
    # [] used to mean every category (as null does), so an emptied list silently ran everything
    categories: list[str] | None = Field(None, min_length=1, description="categories to keep; null: all")
    split: Literal["dev", "test"] | None = Field(None, description="dev: items defaults may be tuned on; test: "
                                                                   "claims only (meta.split, else a hash of the id)")
    limit: int | None = Field(None, ge=1)
    max_new_tokens: int = Field(64, ge=1)
    arrival: ArrivalConfig = ArrivalConfig()
    warmup: Annotated[int, Field(ge=0)] | Literal["all", "auto"] = Field(
        "auto", description="requests run before an arm's timed run, not recorded; 'all': every item once before "
                            "the arm's first run (1 before its later rates and repeats); 'auto': 'all' on CUDA, "
                            "where each new sequence length pays kernel warm-up once "
                            "(docs/gpu/labelling_warmup_h200.txt), else 1")
    order: Literal["interleaved", "sequential"] = Field(
        "interleaved", description="interleaved: arms alternate in blocks of items (offline), per repeat and rate "
                                   "(arrival-driven) or probe by probe (slo_search: every search in lockstep), so "
                                   "machine drift lands on every arm; sequential: one arm after another, one "
                                   "engine loaded at a time")
    block_size: int | None = Field(None, ge=1, description="items per block of an offline workload (both orders); "
                                                           "default: a multiple of every arm's batch, ~12 blocks")
    system_prompt: str | None = None
    ignore_eos: bool = Field(False, description="decode every request to its max_new_tokens, past EOS "
                                                "(vLLM's --ignore-eos): equal output lengths on every engine")
    seed: NumpySeed = 0
    random: RandomSpec | None = Field(None, description="lengths of the random dataset (dataset: random)")
    duration_s: float | None = Field(None, gt=0, description="stop sending new requests this long after an arm "
                                     "starts; those in flight finish (a duration-bounded run); at most 7 days")

    _at_most_a_week = field_validator("duration_s")(within_a_week)

    @model_validator(mode="after")
    def _first_request_within_duration(self):
        self.arrival.check_duration(self.duration_s)
        return self


class SloConfig(Strict):
    ttft_ms: float | None = Field(None, gt=0)
    tpot_ms: float | None = Field(None, gt=0)
    e2el_ms: float | None = Field(None, gt=0)


class CostConfig(Strict):
    usd_per_hour: float = Field(0.0, ge=0)


class ArmConfig(BaseModel):
    model_config = ConfigDict(extra="allow")   # extras are sections and engine options, split in _validate_arm
    engine: str = "hf"
    model: ModelSpec | None = None
    sampling: SamplingConfig | None = None
    max_new_tokens: int | None = Field(None, ge=1)
    _options: Any = PrivateAttr(None)                 # the engine's validated Options
    _sections: dict[str, Any] = PrivateAttr(default_factory=dict)   # validated strategy sections

    @property
    def options(self) -> Any:
        return self._options

    @property
    def sections(self) -> dict[str, Any]:
        return self._sections


class ExperimentConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    model: ModelSpec
    fallback: dict[str, Any] | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # at most 1024: 100,000 passed and died starting that many OpenMP threads (a MemoryError traceback)
    threads: int | None = Field(None, ge=1, le=1024, description="torch threads for the run")
    workload: WorkloadConfig = WorkloadConfig()
    sampling: SamplingConfig = SamplingConfig()
    baseline: str
    arms: dict[str, ArmConfig]
    slo: SloConfig = SloConfig()
    cost: CostConfig = CostConfig()
    repeats: int = Field(1, ge=1, le=20)
    output_dir: str = "results"
    fallback_applied: bool = False

    @field_validator("output_dir")
    @classmethod
    def _some_output_dir(cls, v):
        if not v.strip():       # Path("") is the working directory: runs would land wherever the command started
            raise ValueError("an empty path; give a directory, e.g. output_dir: results (or leave it out)")
        return v

    @field_validator("arms")
    @classmethod
    def _some_arms(cls, v):
        if not v:
            raise ValueError("needs at least one arm, e.g. arms: {plain: {engine: hf}}")
        return v

    @model_validator(mode="after")
    def _baseline_is_arm(self):
        if self.baseline not in self.arms:
            raise ValueError(f"baseline {self.baseline!r} is not an arm; arms are: {', '.join(self.arms)}")
        if self.workload.arrival.kind == "slo_search" and not any(
                getattr(self.slo, k) is not None for k in ("ttft_ms", "tpot_ms", "e2el_ms")):
            raise ValueError("arrival kind slo_search needs an SLO to search against, e.g. slo: {ttft_ms: 2000}")
        return self

    def arm_model(self, arm: str) -> ModelSpec:
        return self.arms[arm].model or self.model

    def arm_sampling(self, arm: str) -> SamplingConfig:
        return self.arms[arm].sampling or self.sampling


def load_config(path: str | Path, overrides: list[str] | None = None, device: str | None = None,
                cuda_available: bool | None = None) -> ExperimentConfig:
    """Read, apply the fallback when no CUDA device is present, then the overrides, validate.

    Precedence, lowest first: the file, its `fallback:` section, what the user typed (`--set`,
    `--device`). The typed values also decide whether the fallback applies (`--set device=cpu`).
    """
    path = Path(path)
    if not path.is_file():      # a directory or a FIFO used to read as "not found" too
        what = "is a directory" if path.is_dir() else "is not a regular file" if path.exists() else "not found"
        raise UserError(f"config {path} {what}", "give the path of a YAML file, e.g. configs/quickstart.yaml")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte {e.start})", "give a YAML text file in UTF-8") from None
    except OSError as e:        # unreadable (chmod 000): a PermissionError traceback before
        raise UserError(f"config {path} cannot be read ({e.strerror})", "give a YAML file you can read") from None
    raw = load_yaml(text, str(path))
    if not isinstance(raw, dict):
        raise UserError(f"{path}: the top level must be a mapping", "start with `name: ...` and `model: ...`")
    typed = with_overrides(raw, overrides or [], device)   # decides the device and the fallback to use
    if cuda_available is None:
        import torch
        cuda_available = torch.cuda.is_available()
    dev = typed.get("device", "auto")
    use_fallback = dev == "cpu" or (dev == "auto" and not cuda_available)
    if not isinstance(typed.get("fallback"), dict):
        return validate(typed, source=str(path))
    # what the user typed (--set, --device) wins over the fallback, which wins over the file
    merged = {**with_overrides(merge(raw, typed["fallback"]), overrides or [], device), "fallback_applied": True}
    if use_fallback:
        return validate(merged, source=f"{path} (fallback applied)")
    cfg = validate(typed, source=str(path))
    # checked with CUDA too: a typo in the fallback section used to surface only on a machine without one
    validate(merged, source=f"{path} (its fallback section, used without CUDA)")
    return cfg


def validate(raw: dict, source: str = "config") -> ExperimentConfig:
    """The config from YAML values, validated strictly (YAML already types its scalars): no bool passes as a
    number (`limit: true`, `batch_size: yes` used to run as 1), no string as a number, no 8.0 as an int."""
    try:
        cfg = ExperimentConfig.model_validate(raw, strict=True)
    except ValidationError as e:
        raise UserError(f"{source}: invalid config\n" + describe_errors(e, ExperimentConfig),
                        "edit the fields named above (python -m testbed list shows valid names)") from None
    for name, arm in cfg.arms.items():
        _validate_arm(name, arm, source)
    return cfg


def _validate_arm(name: str, arm: ArmConfig, source: str) -> None:
    if not ENGINES.names():
        raise RuntimeError("no engine registered: call testbed.plugins.load_plugins() before validating a config")
    where = f"arms.{name}"
    engine = ENGINES.get(arm.engine, where=f"{where}.engine")
    extras = dict(arm.__pydantic_extra__ or {})
    bodies = {k: extras.pop(k) for k in list(extras) if k in SECTIONS}
    try:
        arm._options = engine.Options.model_validate(extras, strict=True)
    except ValidationError as e:
        raise UserError(f"{source}: invalid arm {name!r}\n" + describe_errors(e, engine.Options, prefix=where),
                        f"engine {arm.engine!r} takes: {', '.join(engine.Options.model_fields) or 'no options'}; "
                        f"every arm also takes: engine, model, sampling, max_new_tokens, {', '.join(SECTIONS.names())}"
                        ) from None
    bodies = {k: v for k, v in bodies.items() if v is not None}   # `--set arms.<arm>.<section>=null` drops one
    engine.check_honoured({sec: SECTIONS.get(sec, where=f"{where}.{sec}") for sec in bodies}, f"{source}: {where}")
    for sec, body in bodies.items():
        arm._sections[sec] = _validate_section(sec, body, f"{where}.{sec}", name, source)
    engine.check_sections(arm._sections, f"{source}: {where}")


def _validate_section(sec: str, body: Any, where: str, arm: str, source: str) -> Any:
    cls = SECTIONS.get(sec, where=where)
    try:
        return cls.model_validate(body, strict=True)
    except ValidationError as e:
        raise UserError(f"{source}: invalid arm {arm!r}\n" + describe_errors(e, cls, prefix=where),
                        f"see `python -m testbed list` for {sec} options") from None
    except ValueError as e:
        raise UserError(f"{source}: {where}: {e}", f"fix {where}") from None
