"""The `openai` engine's arm keys (OpenAIOptions), validated at config load, and the request headers they give.

    OpenAIOptions.model_validate({"base_url": "http://127.0.0.1:8000/v1", "extra_body": {"top_k": 5}}, strict=True)
"""
import datetime
import math
import os
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from testbed.engines.base import EngineOptions
from testbed.engines.openai_http import Endpoint
from testbed.errors import UserError


class OpenAIOptions(EngineOptions):
    base_url: str = Field("http://127.0.0.1:8000/v1", description="the server's OpenAI base URL, ending in /v1")
    api_key: str | None = Field(None, description="sent as a Bearer token; prefer api_key_env")
    api_key_env: str | None = Field(None, description="environment variable holding the API key")
    # not `model`: an arm's `model` is its local model spec (tokenizer, prompt template), so an engine
    # option of that name would never be reached
    served_model_name: str | None = Field(None, description="the model name the server serves (vLLM's "
                                          "--served-model-name); default: the arm's model id")
    endpoint: Literal["completions", "chat"] = "completions"
    timeout_s: float = Field(120.0, gt=0, description="longest wait for the next bytes (a stalled stream fails)")
    request_timeout_s: float = Field(3600.0, gt=0, description="longest one request may take, retries included")
    max_retries: int = Field(3, ge=0, le=20)
    backoff_s: float = Field(0.25, gt=0, description="first retry delay; doubles each retry")
    concurrency: int = Field(64, ge=1, le=4096, description="HTTP calls in flight (vLLM's --max-concurrency)")
    # off by default, as vllm bench serve's --num-warmups 0: its first max-concurrency requests connect
    # too, so TTFT stays comparable with a published vLLM table unless a user asks for a warm pool
    warm_connections: int = Field(0, ge=0, le=4096, description="kept-alive connections opened before the "
                                  "first request (GET base_url/models, all at once, untimed; at most "
                                  "`concurrency`); 0: the first `concurrency` requests each connect in their TTFT")
    # bounds how late the drive loop admits a closed-loop or max-concurrency arrival (open-loop
    # schedules are handed over up front and timed by the event loop)
    poll_s: float = Field(0.002, gt=0, le=1.0, description="longest step() wait for a finished request")
    extra_body: dict[str, Any] = Field(default_factory=dict, description="merged into every request body")

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        Endpoint.parse(v)
        return v

    @field_validator("extra_body")
    @classmethod
    def _json_body(cls, v: dict[str, Any]) -> dict[str, Any]:
        # found at load, not when the first request's body is encoded (a NaN went out as the invalid JSON
        # token NaN; a YAML date failed every request of the run)
        problem = json_problem(v)
        if problem:
            path, what = problem
            raise PydanticCustomError("json_value", "{what}", {"what": what, "path": path})
        return v

    @model_validator(mode="after")
    def _warm_within_limit(self) -> "OpenAIOptions":
        if self.warm_connections > self.concurrency:      # the pool holds at most `concurrency`
            raise ValueError(f"warm_connections ({self.warm_connections}) exceeds concurrency ({self.concurrency}); "
                             f"set warm_connections <= {self.concurrency}")
        return self


def auth_headers(options: OpenAIOptions) -> dict[str, str]:
    key = options.api_key
    if options.api_key_env:
        key = os.environ.get(options.api_key_env)
        if not key:
            raise UserError(f"engine openai: environment variable {options.api_key_env} is not set",
                            f"export {options.api_key_env}=<key> before the run")
    return {"Authorization": f"Bearer {key}"} if key else {}


def json_problem(value: Any, path: tuple = ()) -> tuple[tuple, str] | None:
    """(path, what is wrong) for the first value inside `value` that a JSON body cannot carry, or None."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return path + (k,), f"the key {k!r} is not text; quote it"
            if (found := json_problem(v, path + (k,))) is not None:
                return found
        return None
    if isinstance(value, list):
        return next((found for i, v in enumerate(value) if (found := json_problem(v, path + (i,)))), None)
    if isinstance(value, float) and not math.isfinite(value):
        return path, f"{value} is not a JSON number; give a finite number"
    if isinstance(value, datetime.date):        # datetimes too
        return path, f"YAML read {value.isoformat()} as a date, which JSON cannot carry; quote it: '{value.isoformat()}'"
    if value is None or isinstance(value, (str, int, float)):
        return None
    return path, f"a YAML {type(value).__name__} is not a JSON value; give text, a number, a list or a mapping"
