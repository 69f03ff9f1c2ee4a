"""testbed serve's chat stream sends its role chunk with the first token, not at the request's start
(as vLLM's server does): `vllm bench serve --backend openai-chat` stops its TTFT clock at the first
event with choices, so an early role chunk would read a TTFT of ~0 ms."""
import asyncio
import json
from types import SimpleNamespace

from testbed.serve.app import _sse
from testbed.serve.protocol import ChatRequest, CompletionRequest
from testbed.serve.responses import shape_for
from testbed.serve.stream import TokenStream


class Tok:
    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(97 + i) for i in ids)


def events_before_and_after_first_token(body):
    async def main():
        stream = TokenStream(asyncio.get_running_loop())
        req = SimpleNamespace(status="finished", finish_reason="length", num_prompt_tokens=1, num_output_tokens=1)
        st = SimpleNamespace(lm=SimpleNamespace(tokenizer=Tok()), loop=SimpleNamespace(abort=lambda rid: None))
        gen = _sse(st, req, stream, shape_for(body, "m", "id-1"), False)
        first = asyncio.ensure_future(gen.__anext__())
        await asyncio.sleep(0.05)                          # the engine has produced nothing yet
        early = first.done()
        stream.push(("tokens", [0], 0.0))
        stream.push(("done", req))
        out = [await first] + [line async for line in gen]
        return early, [json.loads(x[6:]) for x in out if x.startswith("data: {")]
    return asyncio.run(main())


def test_the_chat_role_chunk_waits_for_the_first_token():
    body = ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
    early, events = events_before_and_after_first_token(body)
    assert not early                                      # nothing went out before the first token
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert events[1]["choices"][0]["delta"]["content"] == "a"


def test_a_completions_stream_opens_with_the_first_token_text():
    early, events = events_before_and_after_first_token(CompletionRequest(model="m", prompt="hi", stream=True))
    assert not early and events[0]["choices"][0]["text"] == "a"
