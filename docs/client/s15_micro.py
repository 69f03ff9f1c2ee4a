"""Client CPU per streamed chunk: aiohttp's read path against an asyncio Protocol with httptools.

    python docs/client/s15_micro.py aiohttp|proto [raw] [uv]

A server process on CPU 1 holds 64 connections and writes 200 SSE chunks to each, one at a time,
5,000 a second in all (a busy-wait pacer), so each chunk arrives in a read of its own; the client
on CPU 0 reads them all and prints its process CPU per chunk (64 connects included). `aiohttp`:
resp.content.iter_any() + the engine's SSEParser, as the engine read before session 15; `proto`:
httptools inside the protocol's data callback + SSEParser, as testbed/engines/http1.py reads;
`raw`: the protocol only counts the bytes (the event loop's own floor); `uv`: uvloop's loop.
Session 15 figures (3 runs each, exclusive lock): docs/client_cpu.md.
"""
import asyncio, json, os, socket, sys, time, multiprocessing as mp
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
N_CONN, CHUNKS, RATE = 64, 200, 5000          # chunks per connection; total chunks/s
def frame(fin):
    ev = json.dumps({"choices": [{"index": 0, "text": "x", "token_ids": [7], "finish_reason": fin}]})
    d = f"data: {ev}\n\n".encode(); return b"%x\r\n%s\r\n" % (len(d), d)
F, L = frame(None), frame("length")
D = b"%x\r\n%s\r\n0\r\n\r\n" % (len(b"data: [DONE]\n\n"), b"data: [DONE]\n\n")
HDR = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
def server(port_q):
    os.sched_setaffinity(0, {1})
    ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(256); port_q.put(ls.getsockname()[1])
    conns = []
    while len(conns) < N_CONN:
        c, _ = ls.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1); conns.append(c)
    for c in conns:   # read request
        buf = b""
        while b"\r\n\r\n" not in buf: buf += c.recv(65536)
        # body: content-length
        h, _, rest = buf.partition(b"\r\n\r\n")
        cl = int([l.split(b":")[1] for l in h.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
        while len(rest) < cl: rest += c.recv(65536)
        c.sendall(HDR)
    gap = 1 / RATE; t = time.perf_counter()
    for i in range(CHUNKS):
        for j, c in enumerate(conns):
            t += gap
            while time.perf_counter() < t: pass
            c.send(L + D if i == CHUNKS - 1 else F)
    time.sleep(1)
async def run_aiohttp(port):
    import aiohttp
    from testbed.engines.openai_http import SSEParser
    s = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=N_CONN))
    async def one():
        n = 0
        async with s.post(f"http://127.0.0.1:{port}/v1/completions", data=b'{"a":1}', headers={"Content-Type": "application/json"}) as r:
            p = SSEParser()
            async for data in r.content.iter_any():
                now = time.perf_counter(); n += len(p.feed(data))
                if p.done: break
        return n
    t0 = time.process_time(); ns = await asyncio.gather(*(one() for _ in range(N_CONN))); cpu = time.process_time() - t0
    await s.close(); return sum(ns), cpu
async def run_proto(port):
    import httptools
    from testbed.engines.openai_http import SSEParser
    loop = asyncio.get_running_loop()
    class P(asyncio.Protocol):
        def __init__(self):
            self.parser = httptools.HttpResponseParser(self); self.sse = SSEParser(); self.n = 0; self.done = loop.create_future(); self.times = []
        def data_received(self, data):
            if RAW: self.n += data.count(b"data:"); (b"0\r\n\r\n" in data) and self.done.set_result(self.n); return
            self.parser.feed_data(data)
        def on_body(self, body):
            now = time.perf_counter(); ev = self.sse.feed(body)
            if ev: self.times.append(now); self.n += len(ev)
        def on_message_complete(self): self.done.set_result(self.n)
    async def one():
        tr, pr = await loop.create_connection(P, "127.0.0.1", port)
        tr.write(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}")
        return await pr.done
    t0 = time.process_time(); ns = await asyncio.gather(*(one() for _ in range(N_CONN))); cpu = time.process_time() - t0
    return sum(ns), cpu
RAW = "raw" in sys.argv
if __name__ == "__main__":
    kind = sys.argv[1]
    q = mp.Queue(); sp = mp.Process(target=server, args=(q,)); sp.start(); port = q.get()
    os.sched_setaffinity(0, {0})
    if len(sys.argv) > 2 and sys.argv[2] == "uv":
        import uvloop; asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    n, cpu = asyncio.run(run_aiohttp(port) if kind == "aiohttp" else run_proto(port))
    sp.join()
    print(kind, sys.argv[2:], "events", n, "cpu s", round(cpu, 3), "us/chunk", round(cpu / n * 1e6, 1))
