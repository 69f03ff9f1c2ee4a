"""The openai engine's SSE reading: events cut anywhere across network reads come out whole and in
order, timed by the read that completed them; a stalled stream fails at timeout_s without a
per-read timer, and a slow but steady one does not."""
import asyncio
import json
import time

import pytest
from aiohttp import web

from testbed.engines.openai_http import Endpoint, SSEClient, SSEParser, StreamError

EVENTS = [{"choices": [{"index": 0, "text": t, "finish_reason": None}]} for t in ("a", "é", "c")]
BODY = b"".join(b"data: " + json.dumps(e, ensure_ascii=False).encode() + b"\n\n" for e in EVENTS) + b"data: [DONE]\n\n"


@pytest.mark.parametrize("cut", [1, 2, 7, 13, len(BODY)])
def test_events_cut_across_reads_come_out_whole_and_in_order(cut):
    parser, out = SSEParser(), []
    for i in range(0, len(BODY), cut):
        out += parser.feed(BODY[i:i + cut])       # a 1-byte cut splits the 2-byte é too
    assert out == EVENTS and parser.done


def test_crlf_comments_and_a_last_line_without_newline():
    parser = SSEParser()
    assert parser.feed(b": ping\r\nevent: x\r\ndata: {\"a\": 1}\r\n\r\ndata: {\"b\"") == [{"a": 1}]
    assert parser.feed(b": 2}") == [] and parser.close() == [{"b": 2}]
    assert not parser.done


def test_nothing_after_done_is_parsed():
    parser = SSEParser()
    assert parser.feed(b"data: [DONE]\n\ndata: {not json\n\n") == [] and parser.done


def test_a_line_that_is_not_json_is_a_stream_error():
    with pytest.raises(StreamError, match="not JSON"):
        SSEParser().feed(b"data: {not json\n\n")


def serve(handler):
    """Run `handler` on loopback and the client coroutine against it; returns the client's result."""
    async def main(client_fn):
        app = web.Application()
        app.router.add_post("/v1/completions", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        client = SSEClient(Endpoint.parse(f"http://127.0.0.1:{port}/v1"))
        try:
            return await client_fn(client)
        finally:
            client.close()
            await runner.cleanup()
    return main


def slow_stream(gaps):
    async def handler(request):
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i, gap in enumerate(gaps):
            await asyncio.sleep(gap)
            await resp.write(b"data: " + json.dumps({"i": i}).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        return resp
    return handler


async def collect(client, stall_s):
    reads = await client.stream_sse("/completions", b"{}", {}, stall_s)
    return [(now, e["i"]) for now, events in reads for e in events]


def test_each_event_is_timed_by_the_read_that_brought_it():
    t0 = time.perf_counter()
    out = asyncio.run(serve(slow_stream([0.0, 0.15, 0.15]))(lambda c: collect(c, 5.0)))
    assert [i for _, i in out] == [0, 1, 2]
    gaps = [b - a for (a, _), (b, _) in zip(out, out[1:])]
    assert all(0.12 < g < 0.5 for g in gaps), gaps
    assert out[0][0] - t0 < 0.5


def test_reading_ends_at_done_without_waiting_for_the_body_to_end():
    async def handler(request):
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b'data: {"i": 0}\n\n')
        await asyncio.sleep(0.05)
        await resp.write(b"data: [DONE]\n\n")     # a read of its own, then the server lingers
        await asyncio.sleep(3)
        return resp

    async def client_fn(client):
        t = time.perf_counter()
        out = await collect(client, 10.0)
        return out, time.perf_counter() - t
    out, took = asyncio.run(serve(handler)(client_fn))
    assert [i for _, i in out] == [0] and took < 1.0


def test_a_stall_fails_at_timeout_s_and_the_task_can_go_on():
    async def client_fn(client):
        t = time.perf_counter()
        with pytest.raises(StreamError, match="stalled"):
            await collect(client, 0.3)
        took = time.perf_counter() - t
        await asyncio.sleep(0.01)                  # the task is not left cancelled (a retry waits like this)
        return took
    took = asyncio.run(serve(slow_stream([0.0, 3.0]))(client_fn))
    assert 0.3 <= took < 1.0


def test_a_steady_stream_slower_in_total_than_timeout_s_is_not_a_stall():
    out = asyncio.run(serve(slow_stream([0.1] * 8))(lambda c: collect(c, 0.3)))
    assert [i for _, i in out] == list(range(8))     # 0.8 s in all, no gap near 0.3 s


def test_a_server_that_never_answers_is_a_stall():
    async def handler(request):
        await asyncio.sleep(3)
        return web.Response()
    async def client_fn(client):
        with pytest.raises(StreamError, match="stalled"):
            await collect(client, 0.3)
        return True
    assert asyncio.run(serve(handler)(client_fn))
