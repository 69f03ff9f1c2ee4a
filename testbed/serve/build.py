"""From a validated OpenAI request body to a ServedRequest for the engine, or an ApiError saying why not.

Chat messages go through the tokenizer's chat template (as the in-process runner renders
prompts, testbed.workloads.prompts.render_prompt); a completions prompt is tokenised as given
(text or token ids), with the tokenizer's special tokens unless `add_special_tokens` is false.
"""
import uuid
from dataclasses import dataclass
from typing import Callable

from testbed.errors import UserError
from testbed.request import GREEDY_BELOW, Request, SamplingParams
from testbed.serve.loop import ServedRequest
from testbed.serve.protocol import ChatRequest, Common, CompletionRequest
from testbed.workloads.prompts import render_prompt


class ApiError(Exception):
    """An OpenAI-style error: HTTP status plus {"error": {message, type, param, code}}."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass
class Defaults:
    """What the served arm sets when a request leaves it out."""
    sampling: SamplingParams
    max_new_tokens: int


def chat_prompt(tokenizer, body: ChatRequest) -> tuple[str, list[int]]:
    messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in body.messages]
    try:
        return render_prompt(tokenizer, messages)
    except Exception as e:   # jinja TemplateError and friends: the template refused these messages
        raise ApiError(400, f"the chat template cannot render these messages: {e}", param="messages") from None


def completion_prompt(tokenizer, body: CompletionRequest) -> tuple[str, list[int]]:
    prompt = body.prompt
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
        if len(prompt) != 1:
            raise ApiError(400, f"one prompt per request is supported, got {len(prompt)}", param="prompt")
        prompt = prompt[0]
    if isinstance(prompt, str):
        ids = list(tokenizer(prompt, add_special_tokens=body.add_special_tokens)["input_ids"])
        return prompt, ids
    vocab = len(tokenizer)
    bad = next((t for t in prompt if not 0 <= t < vocab), None)
    if bad is not None:
        raise ApiError(400, f"prompt token id {bad} is outside the vocabulary [0, {vocab})", param="prompt")
    return tokenizer.decode(prompt), list(prompt)


def sampling(body: Common, d: SamplingParams) -> SamplingParams:
    pick = lambda v, default: default if v is None else v   # noqa: E731
    top_k = pick(body.top_k, d.top_k)
    temperature = pick(body.temperature, d.temperature)
    # a tiny temperature means greedy to every engine, so no engine ever divides logits by it
    return SamplingParams(temperature=0.0 if temperature < GREEDY_BELOW else temperature,
                          top_p=pick(body.top_p, d.top_p), top_k=max(0, top_k), seed=pick(body.seed, d.seed))


# No tokenizer packs more than this many characters into one token on average, so a prompt with more
# characters than max_context * CHARS_PER_TOKEN cannot fit and is refused before it is tokenised.
CHARS_PER_TOKEN = 16


def check_prompt_size(body: ChatRequest | CompletionRequest, max_context: int) -> None:
    """400 for a prompt too long to fit the context whatever the tokenizer, judged by its length alone."""
    size, per_token, unit = _prompt_size(body)
    if max_context and size > max_context * per_token:
        raise ApiError(400, f"this model's maximum context length is {max_context} tokens; the prompt has "
                       f"{size} {unit}, more than can fit", param=_prompt_param(body), code="context_length_exceeded")


def _prompt_size(body: ChatRequest | CompletionRequest) -> tuple[int, int, str]:
    """(size, most tokens one unit of it can be, unit name)."""
    if isinstance(body, ChatRequest):
        return sum(len(m.text()) for m in body.messages), CHARS_PER_TOKEN, "characters"
    prompt = body.prompt
    if isinstance(prompt, str) or (prompt and isinstance(prompt[0], str)):
        texts = [prompt] if isinstance(prompt, str) else prompt
        return sum(len(t) for t in texts), CHARS_PER_TOKEN, "characters"
    return len(prompt), 1, "token ids"


def token_budget(body: ChatRequest | CompletionRequest, n_prompt: int, max_context: int, default: int) -> int:
    """max_tokens as asked; when left out, the arm's default clipped to the room left in the context."""
    if n_prompt == 0:
        raise ApiError(400, "the prompt is empty", param=_prompt_param(body))
    if max_context and n_prompt >= max_context:
        raise ApiError(400, f"this model's maximum context length is {max_context} tokens; the prompt has "
                       f"{n_prompt}", param=_prompt_param(body),
                       code="context_length_exceeded")
    asked = body.token_limit()
    if asked is not None:
        return asked
    return min(default, max_context - n_prompt) if max_context else default


def build_request(body: ChatRequest | CompletionRequest, lm, defaults: Defaults, arrival: float,
                  validate) -> ServedRequest:
    """The engine request for `body`; `validate(req)` is the engine's validate_request (a reason or None)."""
    unsupported = body.unsupported()
    if unsupported:
        raise ApiError(400, f"{unsupported[0]}: {unsupported[1]}", param=unsupported[0], code="unsupported_parameter")
    render = chat_prompt if isinstance(body, ChatRequest) else completion_prompt
    text, ids = render(lm.tokenizer, body)
    budget = token_budget(body, len(ids), lm.max_context, defaults.max_new_tokens)
    prefix = "chatcmpl" if isinstance(body, ChatRequest) else "cmpl"
    req = ServedRequest(id=f"{prefix}-{uuid.uuid4().hex}", prompt_ids=ids, max_new_tokens=budget,
                        sampling=sampling(body, defaults.sampling), arrival_time=arrival, prompt_text=text,
                        eos_token_ids=() if body.ignore_eos else lm.eos_token_ids, ignore_eos=body.ignore_eos)
    reason = validate(req)
    if reason:
        param = "max_tokens" if body.token_limit() else _prompt_param(body)
        raise ApiError(400, reason, param=param, code="context_length_exceeded")
    return req


def admission_check(engine) -> Callable[[Request], str | None]:
    """Why `engine` cannot take a request, or None: its validate_request, then its per-request capacity
    check where it has one (the paged engine's KV budget raises UserError from check_request), so a
    request too big for the served arm is a 400 before it is queued, not a failure after."""
    def check(req: Request) -> str | None:
        reason = engine.validate_request(req)
        capacity = getattr(engine, "check_request", None)
        if reason is None and capacity is not None:
            try:
                capacity(req)
            except UserError as e:
                reason = f"{e.message}; {e.fix}" if e.fix else e.message
        return reason
    return check


def _prompt_param(body) -> str:
    return "messages" if isinstance(body, ChatRequest) else "prompt"
