"""The openai engine's HTTP/1.1 connections (testbed/engines/http1.py through SSEClient): kept
alive and reused, never reused while the last response is still coming or after the server
closed them, and every way a server can break a response ends that request with its reason."""
import asyncio
import json

import pytest

from testbed.engines.http1 import Connection, request_bytes
from testbed.engines.openai_http import Endpoint, HttpStatusError, SSEClient, StreamError

EVENT = b"data: " + json.dumps({"choices": [{"index": 0, "text": "a", "finish_reason": "length"}]}).encode() + b"\n\n"
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def frame(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def read_request(reader: asyncio.StreamReader) -> bool:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    await reader.readexactly(length)
    return True


def run(answer, client_fn):
    """Serve `answer(reader, writer)` once per connection on loopback and run `client_fn(client, accepted)`;
    `accepted` counts the connections the server took."""
    async def main():
        accepted = []

        async def on_connect(reader, writer):
            accepted.append(writer)
            try:
                await answer(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
                pass
            finally:
                writer.close()
        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = SSEClient(Endpoint.parse(f"http://127.0.0.1:{port}/v1"))
        try:
            return await client_fn(client, accepted)
        finally:
            client.close()
            server.close()
    return asyncio.run(main())


async def stream(client, stall_s=5.0):
    return await client.stream_sse("/completions", b"{}", {}, stall_s)


async def keep_alive(reader, writer, linger_s=0.0):
    """Answers every request on the connection; the body's last chunk in a write of its own, as
    uvicorn sends it, `linger_s` after `data: [DONE]`."""
    while await read_request(reader):
        writer.write(HEAD + frame(EVENT) + frame(b"data: [DONE]\n\n"))
        await writer.drain()
        await asyncio.sleep(linger_s)
        writer.write(b"0\r\n\r\n")
        await writer.drain()


def test_requests_one_after_another_reuse_one_connection():
    async def client_fn(client, accepted):
        return [await stream(client) for _ in range(5)], len(accepted)
    reads, connections = run(keep_alive, client_fn)
    assert [len(r) for r in reads] == [1] * 5 and connections == 1


def test_a_server_lingering_after_done_is_not_waited_for_nor_its_connection_reused(monkeypatch):
    monkeypatch.setattr(Connection, "DRAIN_S", 0.2)

    async def client_fn(client, accepted):
        t = asyncio.get_running_loop().time()
        first = await stream(client)
        second = await stream(client)           # the first connection is still draining: a new one
        took = asyncio.get_running_loop().time() - t
        await asyncio.sleep(0.4)                 # past DRAIN_S: the lingering connections were closed
        return len(first) + len(second), len(accepted), took, len(client.pool.every), len(client.pool.idle)
    n, connections, took, still_open, idle = run(lambda r, w: keep_alive(r, w, linger_s=3.0), client_fn)
    assert n == 2 and connections == 2 and took < 1.0
    assert still_open == 0 and idle == 0


def test_a_connection_the_server_closed_while_idle_is_not_reused():
    async def once(reader, writer):              # keep-alive framing, then the server hangs up
        await read_request(reader)
        writer.write(HEAD + frame(EVENT) + frame(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        await writer.drain()

    async def client_fn(client, accepted):
        first = await stream(client)
        await asyncio.sleep(0.1)                 # the server's close reaches the idle connection
        return first, await stream(client), len(accepted)
    first, second, connections = run(once, client_fn)
    assert len(first) == len(second) == 1 and connections == 2


def test_an_error_status_keeps_its_message_and_retry_after_and_the_connection():
    async def answer(reader, writer):
        await read_request(reader)
        body = b'{"error": {"message": "slow down"}}'
        writer.write(b"HTTP/1.1 429 Too Many\r\nRetry-After: 2\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await keep_alive(reader, writer)

    async def client_fn(client, accepted):
        with pytest.raises(HttpStatusError) as e:
            await stream(client)
        return e.value, await stream(client), len(accepted)
    err, reads, connections = run(answer, client_fn)
    assert err.status == 429 and err.message == "slow down" and err.retry_after == 2.0
    assert len(reads) == 1 and connections == 1


@pytest.mark.parametrize("reply, reason", [
    (b"garbage\r\n\r\n", "not an HTTP response"),
    (HEAD + frame(EVENT), "closed or reset by the server mid-response"),            # then the server hangs up
    (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 9\r\n\r\n<html/>..", "not an SSE stream"),
    (HEAD + frame(b"data: {not json\n\n"), "not JSON"),
])
def test_a_broken_response_fails_with_its_reason_and_the_reads_before_it(reply, reason):
    async def answer(reader, writer):
        await read_request(reader)
        writer.write(reply)
        await writer.drain()

    async def client_fn(client, accepted):
        with pytest.raises(StreamError, match=reason) as e:
            await stream(client)
        return e.value.reads
    reads = run(answer, client_fn)
    assert len(reads) == (1 if reason.startswith("closed") else 0)


def test_close_ends_a_connection_in_use():
    async def stall(reader, writer):
        await read_request(reader)
        writer.write(HEAD + frame(EVENT))
        await asyncio.sleep(3)

    async def client_fn(client, accepted):
        task = asyncio.ensure_future(stream(client, stall_s=10))
        await asyncio.sleep(0.2)
        client.close()
        with pytest.raises(StreamError, match="mid-response"):
            await asyncio.wait_for(task, 1.0)
        return True
    assert run(stall, client_fn)


def test_a_header_with_a_line_break_is_refused():
    with pytest.raises(ValueError, match="line break"):
        request_bytes("POST", "/v1/completions", "h", {"Authorization": "Bearer x\r\nX-Evil: 1"})
