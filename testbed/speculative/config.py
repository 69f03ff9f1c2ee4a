"""The arm's `speculative:` section: which proposer, how many draft tokens, fixed or adaptive.

    speculative: {method: prompt_lookup, ngram: 3, num_draft_tokens: 10}
    speculative: {draft: {id: HuggingFaceTB/SmolLM2-135M-Instruct}, num_draft_tokens: 5}   # method draft_model
    speculative: {method: self_speculative, layers: 12, num_draft_tokens: 3, adaptive: {max: 8}}
    speculative: {draft: {id: qwen2.5-coder-0.5b}, lookup: true, ngram: 3, ngram_min: 2}  # lookup guesses, the draft checks

`build(lm)` returns the decoder the hf engine runs in place of `generate`.
"""
from typing import Any

from pydantic import Field, PrivateAttr, field_validator, model_validator

from testbed.config import ModelSpec, Strict
from testbed.sections import SECTIONS, Section
from testbed.speculative import draft_model, prompt_lookup, self_speculative  # noqa: F401  (register proposers)
from testbed.speculative.adaptive import AdaptiveK, Controller
from testbed.speculative.base import PROPOSERS, Proposer
from testbed.speculative.checks import check_arm
from testbed.speculative.decoder import SpeculativeDecoder

MAX_DRAFT_TOKENS = 64


class AdaptiveConfig(Strict):
    min: int = Field(1, ge=1, le=MAX_DRAFT_TOKENS, description="smallest draft length")
    max: int = Field(16, ge=1, le=MAX_DRAFT_TOKENS, description="largest draft length")
    min_gain: float | None = Field(None, gt=0, lt=1, description="draft the k-th token while acceptance^k "
                                   "exceeds this; default: the measured draft cost + 0.1")

    @model_validator(mode="after")
    def _ordered(self):
        if self.min > self.max:
            raise ValueError(f"adaptive.min {self.min} is above adaptive.max {self.max}")
        return self


@SECTIONS.register("speculative")
class SpeculativeConfig(Section):
    engine_level = True     # the engine runs the decoder (hf, paged) or maps it (vllm)
    method: str = Field("draft_model", description="draft_model | prompt_lookup | self_speculative")
    draft: ModelSpec | None = Field(None, description="the draft model (method draft_model); same tokenizer as the target")
    num_draft_tokens: int = Field(5, ge=1, le=MAX_DRAFT_TOKENS, description="draft tokens per step (the start, if adaptive)")
    ngram: int = Field(3, ge=1, le=32, description="longest n-gram prompt lookup matches")
    ngram_min: int = Field(1, ge=1, le=32, description="shortest n-gram prompt lookup matches")
    layers: int | float | None = Field(None, gt=0, description="self_speculative: target layers the draft runs, "
                                       "a count (18) or a share of the target's depth (0.6); default half")
    lookup: bool = Field(False, description="draft_model / self_speculative, greedy: check a prompt-lookup guess "
                         "(ngram, ngram_min) in one draft forward before drafting token by token")
    adaptive: bool | AdaptiveConfig = Field(False, description="adapt num_draft_tokens to the running acceptance")
    _proposers: dict[int, Proposer] = PrivateAttr(default_factory=dict)
    _models: dict | None = PrivateAttr(None)      # the experiment's loaded models: arms share one copy of a draft

    @field_validator("method")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in PROPOSERS:
            raise ValueError(f"unknown method {v!r}; use one of: {', '.join(PROPOSERS.names())}")
        return v

    @model_validator(mode="after")
    def _consistent(self):
        if self.method == "draft_model" and self.draft is None:
            raise ValueError("method draft_model needs draft: {id: <model sharing the target's tokenizer>}; "
                             "or use method: prompt_lookup or self_speculative")
        if self.method != "draft_model" and self.draft is not None:
            raise ValueError(f"draft applies to method draft_model only, not {self.method}")
        if self.layers is not None and self.method != "self_speculative":
            raise ValueError(f"layers applies to method self_speculative only, not {self.method}")
        if isinstance(self.layers, float) and self.layers >= 1:
            raise ValueError(f"layers {self.layers}: give a layer count (an integer) or a share of the depth below 1")
        if self.lookup and self.method == "prompt_lookup":
            raise ValueError("lookup applies to methods draft_model and self_speculative (prompt_lookup already is one)")
        if self.ngram_min > self.ngram:
            raise ValueError(f"ngram_min {self.ngram_min} is above ngram {self.ngram}")
        return self

    @property
    def max_draft_tokens(self) -> int:
        """The longest draft a step may propose (adaptive.max when adaptive)."""
        a = self.adaptive
        return self.num_draft_tokens if a is False else (AdaptiveConfig() if a is True else a).max

    def new_controller(self) -> Controller:
        a = self.adaptive
        if a is False:
            return Controller(self.num_draft_tokens)
        a = AdaptiveConfig() if a is True else a
        return AdaptiveK(self.num_draft_tokens, a.min, a.max, a.min_gain)

    def proposer(self, lm: Any) -> Proposer:
        """The proposer for target `lm`, built once (a draft model loads once per arm, not per engine)."""
        if id(lm) not in self._proposers:
            self._proposers[id(lm)] = PROPOSERS.get(self.method)(self, lm)
        return self._proposers[id(lm)]

    def bind(self, plan: Any, items: list, where: str) -> None:
        """Section hook: the draft loads and shares the target's tokenizer, and the arm's
        sampling is one the verifier honours, before any run directory exists."""
        self._models = plan.shared["models"]
        check_arm(plan)

    def build(self, lm: Any) -> SpeculativeDecoder:
        """The decoder the hf engine calls: run_batch(requests), stats()."""
        return SpeculativeDecoder(lm, self.proposer(lm), self.new_controller)
