"""A request's token stream on the HTTP side: engine-thread events into an asyncio queue, text out.

    stream = TokenStream(asyncio.get_running_loop())
    req.listener = stream.push                      # called on the engine thread
    async for ids, text in stream.deltas(detok): ...  # on the event loop; ends when the request does

A client that goes away is noticed two ways: the ASGI server cancels the streaming task, or
(for non-streaming requests) `is_gone` polling sees the disconnect; either way the caller aborts.
"""
import asyncio
from typing import AsyncIterator, Awaitable, Callable

REPLACEMENT = "\ufffd"     # an incomplete UTF-8 sequence decodes to this; wait for the next token


class Detokenizer:
    """Incremental text from token ids: the full decode so far, minus what was already sent.

    A decode ending in U+FFFD (half of a multi-byte character) is held back until it completes,
    so concatenated deltas equal the final decode.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.sent = 0

    def add(self, ids: list[int]) -> str:
        self.ids += ids
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith(REPLACEMENT):
            return ""
        delta, self.sent = text[self.sent:], len(text)
        return delta

    def flush(self) -> str:
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        delta, self.sent = text[self.sent:], max(self.sent, len(text))
        return delta


class TokenStream:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.queue: asyncio.Queue = asyncio.Queue()

    def push(self, event: tuple) -> None:
        """Called from the engine thread: hand the event to the event loop."""
        self.loop.call_soon_threadsafe(self.queue.put_nowait, event)

    async def deltas(self, detok: Detokenizer) -> AsyncIterator[tuple[list[int], str]]:
        """(new token ids, new text) per engine append, until the request completes."""
        while True:
            event = await self.queue.get()
            if event[0] == "done":
                tail = detok.flush()
                if tail:
                    yield [], tail
                return
            yield event[1], detok.add(event[1])

    async def wait_done(self, is_gone: Callable[[], Awaitable[bool]], poll_s: float = 0.25):
        """The finished request; None if `is_gone()` turns true first (the client disconnected)."""
        while True:
            try:
                event = await asyncio.wait_for(self.queue.get(), poll_s)
            except asyncio.TimeoutError:
                if await is_gone():
                    return None
                continue
            if event[0] == "done":
                return event[1]
