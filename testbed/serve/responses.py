"""Response bodies for chat and completions: whole (non-streaming) and as SSE chunks.

An SSE stream is `data: {json}\\n\\n` per chunk and `data: [DONE]\\n\\n` at the end. A chat stream
opens with a role delta; the last content chunk carries finish_reason; with
stream_options.include_usage a final chunk with empty choices carries usage (OpenAI's shape).
"""
from abc import ABC, abstractmethod

from testbed.serve.loop import ServedRequest
from testbed.serve.protocol import (AssistantMessage, ChatChoice, ChatChunkChoice, ChatCompletion,
                                    ChatCompletionChunk, ChatRequest, Completion, CompletionChoice, Delta, Usage,
                                    dump)

DONE = "data: [DONE]\n\n"


def sse(payload: str) -> str:
    return f"data: {payload}\n\n"


def usage(req: ServedRequest) -> Usage:
    return Usage(prompt_tokens=req.num_prompt_tokens, completion_tokens=req.num_output_tokens,
                 total_tokens=req.num_prompt_tokens + req.num_output_tokens)


class Shape(ABC):
    """How one endpoint spells its bodies (ChatShape, CompletionShape)."""

    def __init__(self, body, model: str, request_id: str):
        self.model, self.id = model, request_id
        self.ids = body.return_token_ids          # the token_ids extension, asked for by the client

    @abstractmethod
    def whole(self, req: ServedRequest, text: str) -> str:
        """The non-streaming body."""

    @abstractmethod
    def chunk(self, text: str, ids: list[int], finish: str | None = None) -> str:
        """One SSE event with new text (and its token ids where asked)."""

    @abstractmethod
    def usage_chunk(self, req: ServedRequest) -> str:
        """The closing SSE event with usage and no choices."""

    def opening(self) -> list[str]:
        return []


class ChatShape(Shape):
    def whole(self, req, text):
        choice = ChatChoice(message=AssistantMessage(content=text), finish_reason=req.finish_reason,
                            token_ids=list(req.output_ids) if self.ids else None)
        return dump(ChatCompletion(id=self.id, model=self.model, choices=[choice], usage=usage(req)))

    def opening(self):
        return [sse(dump(ChatCompletionChunk(id=self.id, model=self.model,
                                             choices=[ChatChunkChoice(delta=Delta(role="assistant", content=""))])))]

    def chunk(self, text, ids, finish=None):
        choice = ChatChunkChoice(delta=Delta(content=text) if text or not finish else Delta(), finish_reason=finish,
                                 token_ids=list(ids) if self.ids else None)
        return sse(dump(ChatCompletionChunk(id=self.id, model=self.model, choices=[choice])))

    def usage_chunk(self, req):
        return sse(dump(ChatCompletionChunk(id=self.id, model=self.model, choices=[], usage=usage(req))))


class CompletionShape(Shape):
    def whole(self, req, text):
        choice = CompletionChoice(text=text, finish_reason=req.finish_reason,
                                  token_ids=list(req.output_ids) if self.ids else None)
        return dump(Completion(id=self.id, model=self.model, choices=[choice], usage=usage(req)))

    def chunk(self, text, ids, finish=None):
        choice = CompletionChoice(text=text, finish_reason=finish, token_ids=list(ids) if self.ids else None)
        return sse(dump(Completion(id=self.id, model=self.model, choices=[choice])))

    def usage_chunk(self, req):
        return sse(dump(Completion(id=self.id, model=self.model, choices=[], usage=usage(req))))


def shape_for(body, model: str, request_id: str) -> Shape:
    return (ChatShape if isinstance(body, ChatRequest) else CompletionShape)(body, model, request_id)
