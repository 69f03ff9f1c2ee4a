"""bench_client.py's stub OpenAI server: asyncio on raw non-blocking sockets, pre-encoded chunked SSE
frames (one token each), and per request the kernel's receive time (SO_TIMESTAMPNS) and when its
first and last chunk were written, so the client's overhead can be told from the server's."""
import asyncio
import json
import socket
import struct
import time


def _frame(finish: str | None) -> bytes:
    """One chunked-transfer frame holding one SSE event with one token."""
    ev = json.dumps({"choices": [{"index": 0, "text": "x", "token_ids": [7], "finish_reason": finish}]})
    data = f"data: {ev}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(data), data)


FRAMES = (_frame(None), _frame("length"))                 # [is the last chunk]
DONE_FRAME = b"%x\r\n%s\r\n0\r\n\r\n" % (len(b"data: [DONE]\n\n"), b"data: [DONE]\n\n")


SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)     # Linux; Python 3.11 lacks the name


async def _recv(loop, sock: socket.socket) -> tuple[bytes, float]:
    """One read and when the kernel received its last packet (SO_TIMESTAMPNS, moved onto perf_counter)."""
    while True:
        try:
            data, anc, _, _ = sock.recvmsg(65536, 64)
        except BlockingIOError:
            ready = loop.create_future()
            loop.add_reader(sock.fileno(), lambda: ready.done() or ready.set_result(None))
            try:
                await ready
            finally:
                loop.remove_reader(sock.fileno())
            continue
        kernel = next((struct.unpack("qq", d[:16]) for lvl, typ, d in anc
                       if lvl == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS), None)
        now = time.perf_counter()
        if kernel is None:
            return data, now
        return data, kernel[0] + kernel[1] * 1e-9 - (time.time() - now)   # realtime -> perf_counter


async def _read_request(loop, sock, buf: bytes) -> tuple[bytes, bytes, float, bytes] | None:
    """(head, body, kernel time its last byte arrived, what is left) of the next request; None at EOF."""
    t = time.perf_counter()
    while b"\r\n\r\n" not in buf:
        data, t = await _recv(loop, sock)
        if not data:
            return None
        buf += data
    head, _, buf = buf.partition(b"\r\n\r\n")
    fields = (x.partition(b":") for x in head.split(b"\r\n")[1:])
    length = next((int(v) for k, _, v in fields if k.strip().lower() == b"content-length"), 0)
    while len(buf) < length:
        data, t = await _recv(loop, sock)
        if not data:
            return None
        buf += data
    return head, buf[:length], t, buf[length:]


async def _serve(sock: socket.socket, times: dict, accepts: list, gap_s: float) -> None:
    """Requests on one keep-alive connection: POST streams chunks, GET /times returns the log and when
    each connection was accepted, any other GET (the engine's warm-up, /v1/models) an empty model list.
    Logged per request: [kernel received it, stub began handling it, first chunk written, last written];
    a write's time is taken just before its send, so the send itself counts as delivery."""
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)     # each frame leaves at once, as asyncio's would
    buf = b""
    try:
        while (got := await _read_request(loop, sock, buf)) is not None:
            head, body, t_kernel, buf = got
            t_seen = time.perf_counter()
            if head.startswith(b"GET"):
                log = head.startswith(b"GET /times")
                data = json.dumps({"times": times, "accepts": accepts}).encode() if log else b'{"data": []}'
                await loop.sock_sendall(sock, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                        b"Content-Length: %d\r\n\r\n" % len(data) + data)
                continue
            req = json.loads(body)
            await loop.sock_sendall(sock, b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                    b"Transfer-Encoding: chunked\r\n\r\n")
            n, sent = req["max_tokens"], []
            for i in range(n):
                await asyncio.sleep(gap_s)
                sent.append(time.perf_counter())
                await loop.sock_sendall(sock, FRAMES[i == n - 1])
            await loop.sock_sendall(sock, DONE_FRAME)
            times[req["prompt"]] = [t_kernel, t_seen, sent[0], sent[-1]]
    except ConnectionError:
        pass
    finally:
        sock.close()


def stub_server(sock: socket.socket, gap_s: float) -> None:
    times: dict = {}
    accepts: list = []             # perf_counter of each connection accepted
    tasks: set = set()             # the loop holds tasks weakly

    async def main():
        loop = asyncio.get_running_loop()
        sock.setblocking(False)
        while True:
            conn, _ = await loop.sock_accept(sock)
            accepts.append(time.perf_counter())
            task = loop.create_task(_serve(conn, times, accepts, gap_s))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    asyncio.run(main())
