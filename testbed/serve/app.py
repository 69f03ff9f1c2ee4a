"""The HTTP routes (Starlette): /v1/chat/completions, /v1/completions, /v1/models, /health, /metrics.

    app = create_app(ServeState(loop, lm, defaults, model_names=["smollm2-135m"], api_key=None))

Every error is an OpenAI-style body `{"error": {"message", "type", "param", "code"}}` with a
4xx/5xx status, and the server keeps serving. A full engine loop (max_queue requests in
flight) answers 503 with Retry-After. With an API key, /v1/* and /metrics need
`Authorization: Bearer KEY` (401 otherwise); /health never does.
"""
import asyncio
import hmac
import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from testbed.serve import metrics
from testbed.serve.build import ApiError, Defaults, admission_check, build_request, check_prompt_size
from testbed.serve.guard import Limits
from testbed.serve.loop import EngineLoop, Overloaded, ServedRequest
from testbed.serve.protocol import ChatRequest, CompletionRequest
from testbed.serve.responses import DONE, Shape, sse, shape_for
from testbed.serve.stream import Detokenizer, TokenStream

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@dataclass
class ServeState:
    loop: EngineLoop
    lm: object                         # testbed.models.LoadedModel
    defaults: Defaults
    model_names: list[str]             # the first is what /v1/models lists and responses name
    api_key: str | None = None
    http_errors: Counter = field(default_factory=Counter)
    limits: Limits = field(default_factory=Limits)
    # one thread tokenises, off the event loop: /health and streams stay live during a long prompt, and
    # the tokenizer is never called from two threads at once
    tokenizer_pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "tokenize"))


def create_app(state: ServeState) -> Starlette:
    routes = [Route("/health", health), Route("/metrics", prometheus), Route("/v1/models", models),
              Route("/v1/chat/completions", chat, methods=["POST"]),
              Route("/v1/completions", completions, methods=["POST"])]
    app = Starlette(routes=routes, exception_handlers={ApiError: on_api_error, HTTPException: on_http_error,
                                                       Exception: on_crash})
    app.state.serve = state
    return app


def _state(request: HttpRequest) -> ServeState:
    return request.app.state.serve


async def on_api_error(request: HttpRequest, exc: ApiError) -> Response:
    _state(request).http_errors[str(exc.status)] += 1
    headers = {"Retry-After": "1"} if exc.status in (429, 503) else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


async def on_http_error(request: HttpRequest, exc: HTTPException) -> Response:
    kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    return await on_api_error(request, ApiError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}",
                                                kind))


async def on_crash(request: HttpRequest, exc: Exception) -> Response:
    return JSONResponse(ApiError(500, f"internal error: {type(exc).__name__}: {exc}", "server_error").body(),
                        status_code=500)


def authorize(request: HttpRequest) -> None:
    key = _state(request).api_key
    if key is None:
        return
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {key}".encode()):
        raise ApiError(401, "missing or wrong API key: send `Authorization: Bearer <key>`",
                       "invalid_request_error", code="invalid_api_key")


async def health(request: HttpRequest) -> Response:
    ok = _state(request).loop.alive
    return JSONResponse({"status": "ok" if ok else "engine loop stopped"}, status_code=200 if ok else 503)


async def prometheus(request: HttpRequest) -> Response:
    authorize(request)
    st = _state(request)
    return PlainTextResponse(metrics.render(st.loop, st.http_errors, st.model_names[0]),
                             media_type="text/plain; version=0.0.4")


async def models(request: HttpRequest) -> Response:
    authorize(request)
    st = _state(request)
    data = [{"id": st.model_names[0], "object": "model", "created": 0, "owned_by": "testbed",
             "max_model_len": st.lm.max_context}]
    return JSONResponse({"object": "list", "data": data})


async def chat(request: HttpRequest) -> Response:
    return await _generate(request, ChatRequest)


async def completions(request: HttpRequest) -> Response:
    return await _generate(request, CompletionRequest)


async def read_body(request: HttpRequest, limits: Limits) -> bytes:
    """The body, refused with 413 past max_body_bytes (by Content-Length or as it streams in) and 408
    when it takes longer than body_timeout_s, so no oversized or trickled body is ever held whole."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise ApiError(413, f"request body of {declared} bytes is over the limit of {limits.max_body_bytes}",
                       code="body_too_large")

    async def collect() -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise ApiError(413, f"request body over the limit of {limits.max_body_bytes} bytes",
                               code="body_too_large")
            chunks.append(chunk)
        return b"".join(chunks)
    try:
        return await asyncio.wait_for(collect(), limits.body_timeout_s)
    except asyncio.TimeoutError:
        raise ApiError(408, f"request body not received within {limits.body_timeout_s:g} s",
                       code="body_timeout") from None


async def parse(request: HttpRequest, cls: type[BaseModel]) -> BaseModel:
    """The validated body, or a 400 naming the first bad parameter."""
    raw = await read_body(request, _state(request).limits)
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ApiError(400, f"malformed JSON body: {e}") from None
    if not isinstance(obj, dict):
        raise ApiError(400, "the body must be a JSON object")
    try:
        return cls.model_validate(obj)
    except ValidationError as e:
        err = e.errors()[0]
        param = ".".join(str(p) for p in err["loc"]) or None
        what = "unrecognized request argument" if err["type"] == "extra_forbidden" else err["msg"]
        raise ApiError(400, f"{param}: {what}" if param else what, param=param,
                       code="missing_required_parameter" if err["type"] == "missing" else None) from None


async def _generate(request: HttpRequest, cls) -> Response:
    arrival = time.perf_counter()     # the engine clock; TTFT counts parsing and tokenising too
    authorize(request)
    st = _state(request)
    body = await parse(request, cls)
    if body.model not in st.model_names:
        raise ApiError(404, f"the model `{body.model}` does not exist; this server serves {st.model_names[0]!r}",
                       param="model", code="model_not_found")
    check_prompt_size(body, st.lm.max_context)          # before tokenising: a 50 MB prompt never reaches it
    req = await asyncio.get_running_loop().run_in_executor(
        st.tokenizer_pool, build_request, body, st.lm, st.defaults, arrival, admission_check(st.loop.engine))
    stream = TokenStream(asyncio.get_running_loop())
    req.listener = stream.push if body.stream else (lambda e: e[0] == "done" and stream.push(e))
    try:
        st.loop.submit(req)
    except Overloaded as e:
        raise ApiError(503, f"server overloaded: {e}; retry later", "server_overloaded", code="queue_full") from None
    shape = shape_for(body, st.model_names[0], req.id)
    if body.stream:
        return StreamingResponse(_sse(st, req, stream, shape, body.wants_usage_chunk()),
                                 media_type="text/event-stream", headers=SSE_HEADERS)
    done = await stream.wait_done(request.is_disconnected)
    if done is None:
        st.loop.abort(req.id)
        return Response(status_code=499)
    return _whole(st, req, shape)


def _whole(st: ServeState, req: ServedRequest, shape: Shape) -> Response:
    if req.status == "failed":
        raise ApiError(500, f"generation failed: {req.error}", "server_error")
    text = st.lm.tokenizer.decode(req.output_ids, skip_special_tokens=True)
    return Response(shape.whole(req, text), media_type="application/json")


async def _sse(st: ServeState, req: ServedRequest, stream: TokenStream, shape: Shape, with_usage: bool):
    """The SSE body; if the client goes away before the end, the request leaves the engine."""
    complete = False
    # the chat role chunk goes out with the first token, as vLLM's server sends it: a client that times
    # TTFT by the first event with choices (`vllm bench serve --backend openai-chat`) would otherwise
    # stop its clock at the request's start
    opening = shape.opening()
    try:
        async for ids, text in stream.deltas(Detokenizer(st.lm.tokenizer)):
            for line in opening:
                yield line
            opening = []
            if text or (shape.ids and ids):
                yield shape.chunk(text, ids)
        for line in opening:                         # no token at all: still the shape a client expects
            yield line
        if req.status == "failed":
            yield sse(json.dumps(ApiError(500, f"generation failed: {req.error}", "server_error").body()))
        else:
            yield shape.chunk("", [], finish=req.finish_reason)
        if with_usage:
            yield shape.usage_chunk(req)
        yield DONE
        complete = True
    finally:
        if not complete:
            st.loop.abort(req.id)
