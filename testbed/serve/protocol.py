"""The OpenAI API as pydantic models: the requests `testbed serve` accepts and the bodies it returns.

Requests forbid unknown fields (the OpenAI API answers 400 "unrecognized request argument");
fields testbed cannot honour (penalties, logprobs, n > 1, stop strings, tools) are accepted
only at their neutral value, so a client never gets silently different behaviour.
Omitted sampling fields take the served arm's configured sampling (as vLLM takes the model's
generation config). Extensions, as in vLLM: `top_k`, `return_token_ids` (each choice carries
the generated token ids), `add_special_tokens` (completions: tokenise the prompt with them),
`ignore_eos`, and `repetition_penalty` at its neutral 1.0 (what `vllm bench serve` sends).
"""
import json
import time
from typing import Any, Literal

from pydantic import BaseModel, Field

from testbed.config import Strict
from testbed.request import SEED_LIMIT


class StreamOptions(Strict):
    include_usage: bool = False
    continuous_usage_stats: bool = False


class TextPart(Strict):
    type: Literal["text"]
    text: str


class ChatMessage(Strict):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart]
    name: str | None = None

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


# fields testbed accepts only at a neutral value (unset, false, zero), and why
UNSUPPORTED: dict[str, str] = {
    "presence_penalty": "penalties are not implemented",
    "frequency_penalty": "penalties are not implemented",
    "logit_bias": "logit_bias is not implemented",
    "logprobs": "logprobs are not implemented",
    "top_logprobs": "logprobs are not implemented",
    "stop": "stop strings are not implemented; the model stops at its EOS or max_tokens",
    "tools": "tool calls are not implemented",
    "tool_choice": "tool calls are not implemented",
    "response_format": "response_format is not implemented",
    "echo": "echo is not implemented",
    "suffix": "suffix is not implemented",
    "best_of": "best_of above 1 is not implemented",
    "repetition_penalty": "repetition_penalty is not implemented",
}
NEUTRAL = {"best_of": 1, "repetition_penalty": 1.0}   # set but harmless (vLLM's bench client sends 1.0)


class Common(Strict):
    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=-1)
    seed: int | None = Field(None, ge=0, lt=SEED_LIMIT, description="in [0, 2^63)")
    n: int = Field(1, ge=1, le=1, description="one choice per request")
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    return_token_ids: bool = False
    ignore_eos: bool = False          # vLLM's extension: generate max_tokens whatever the model emits
    repetition_penalty: float | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict[str, float] | None = None
    logprobs: bool | int | None = None
    stop: str | list[str] | None = None

    def unsupported(self) -> tuple[str, str] | None:
        """(param, why) for the first field set away from its neutral value, or None."""
        for name, why in UNSUPPORTED.items():
            value = getattr(self, name, None)
            if value and value != NEUTRAL.get(name):
                return name, why
        return None

    def wants_usage_chunk(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatRequest(Common):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    top_logprobs: int | None = None
    tools: list[dict] | None = None
    tool_choice: Any = None
    response_format: dict | None = None
    parallel_tool_calls: bool | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None

    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(Common):
    prompt: str | list[int] | list[str] = Field(description="text, token ids, or a list holding one text")
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = None
    add_special_tokens: bool = True

    def token_limit(self) -> int | None:
        return self.max_tokens


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str | None
    token_ids: list[int] | None = None


class ChatChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: str | None = None
    token_ids: list[int] | None = None


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    logprobs: None = None
    finish_reason: str | None = None
    token_ids: list[int] | None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChatChoice]
    usage: Usage


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


def dump(model: BaseModel) -> str:
    """Compact JSON; the extension `token_ids` and a chunk's `usage` appear only when set."""
    data = model.model_dump()
    for choice in data.get("choices", []):
        if choice.get("token_ids") is None:
            choice.pop("token_ids", None)
    if data.get("usage", 0) is None:
        data.pop("usage")
    return json.dumps(data, separators=(",", ":"))
