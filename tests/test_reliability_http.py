"""`testbed serve` against hostile HTTP clients: oversized and trickled bodies, prompts too long to
tokenise, idle and slow-loris connections, more connections than the cap, and log floods. Each is
refused without hurting /health or the next well-behaved request. Every wait is bounded."""
import dataclasses
import http.client
import json
import logging
import socket
import threading
import time

import pytest

from testbed.config import validate
from testbed.serve.guard import Limits, RateLimit
from testbed.serve.server import BackgroundServer, build_state

LIMITS = Limits(max_body_bytes=256 << 10, max_connections=8, head_timeout_s=1.0, body_timeout_s=1.0,
                keep_alive_s=1.0)


class SlowTokenizer:
    """The tiny tokenizer, but every encode takes 1.5 s (a huge prompt's cost, without the huge prompt)."""

    def __init__(self, tok):
        self.tok = tok

    def __call__(self, *args, **kwargs):
        time.sleep(1.5)
        return self.tok(*args, **kwargs)

    def __len__(self):
        return len(self.tok)

    def __getattr__(self, name):
        return getattr(self.tok, name)


@pytest.fixture(scope="module")
def server():
    cfg = validate({"name": "hostile", "model": {"id": "random:tiny-llama"}, "baseline": "local",
                    "arms": {"local": {"engine": "hf"}}, "workload": {"max_new_tokens": 4}})
    state = build_state(cfg, "local", max_queue=32)
    state.limits = LIMITS
    with BackgroundServer(state) as srv:
        yield srv


def post(srv, body: bytes, path="/v1/completions", headers=None, timeout=10) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def completion(prompt, **kw) -> bytes:
    return json.dumps({"model": "local", "prompt": prompt, "max_tokens": 2, **kw}).encode()


def healthy(srv, within_s=0.5) -> bool:
    t = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=within_s)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200 and time.monotonic() - t < within_s
    finally:
        conn.close()


def wait_healthy(srv, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if healthy(srv, within_s=1.0):
                return True
        except OSError:
            pass                     # not listening yet, or still out of descriptors
        time.sleep(0.2)
    return False


def closed_by_server(sock: socket.socket, within_s: float) -> bool:
    sock.settimeout(within_s)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_an_oversized_body_is_a_413_before_it_is_read(server):
    status, body = post(server, b"x" * (LIMITS.max_body_bytes + 1))
    assert status == 413 and body["error"]["code"] == "body_too_large"


def test_an_oversized_chunked_body_is_a_413_as_it_streams(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    with sock:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"y" * (64 << 10)
        try:
            for _ in range(8):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            pass                                   # the server answered and closed early: fine
        assert b" 413 " in sock.recv(4096).split(b"\r\n")[0]


def test_a_prompt_too_long_for_any_tokenizer_is_refused_untokenised(server):
    status, body = post(server, completion("word " * 20_000))           # 100k chars < body cap
    assert status == 400 and body["error"]["code"] == "context_length_exceeded"
    assert "characters" in body["error"]["message"]


def test_tokenising_runs_off_the_event_loop(server):
    state = server.state
    fast = state.lm
    state.lm = dataclasses.replace(fast, tokenizer=SlowTokenizer(fast.tokenizer))
    try:
        results = []
        t = threading.Thread(target=lambda: results.append(post(server, completion("slow to tokenise"))))
        t.start()
        time.sleep(0.3)
        assert healthy(server, within_s=0.5)            # the event loop answers while a prompt tokenises
        t.join(20)
        assert results and results[0][0] == 200
    finally:
        state.lm = fast


def test_idle_and_slow_loris_connections_are_closed_at_the_head_deadline(server):
    idle = socket.create_connection(("127.0.0.1", server.port))
    loris = socket.create_connection(("127.0.0.1", server.port))
    with idle, loris:
        loris.sendall(b"POST /v1/completions HTTP/1.1\r\n")
        for _ in range(3):                          # a header byte every 0.4 s never completes the head
            time.sleep(0.4)
            try:
                loris.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                break
        assert closed_by_server(idle, within_s=2.0) and closed_by_server(loris, within_s=2.0)
    assert post(server, completion("after"))[0] == 200


def test_a_trickled_body_is_a_408(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    with sock:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        assert b" 408 " in sock.recv(4096).split(b"\r\n")[0]


def test_connections_beyond_the_cap_are_refused_and_the_server_recovers(server):
    socks = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(LIMITS.max_connections + 4)]
    try:
        refused = sum(closed_by_server(s, within_s=0.3) for s in socks)
        assert refused >= 4
    finally:
        for s in socks:
            s.close()
    assert wait_healthy(server, 5) and post(server, completion("after the flood"))[0] == 200


def test_repeated_log_records_are_rate_limited_and_keep_one_traceback(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("testbed.serve.guard.time.monotonic", lambda: clock[0])
    logger = logging.getLogger("testbed.test-flood")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    logger.addFilter(RateLimit(per_s=0.0001, burst=3))
    logger.propagate = False
    try:
        for _ in range(1000):
            try:
                raise OSError(24, "Too many open files")
            except OSError:
                logger.error("socket.accept() out of system resource", exc_info=True)
        clock[0] += 1e5                      # the bucket refills: the next record carries the count
        logger.error("socket.accept() out of system resource")
    finally:
        logger.removeHandler(handler)
    assert len(records) == 4 and records[0].exc_info and not any(r.exc_info for r in records[1:])
    assert records[-1].getMessage().endswith("[997 similar messages suppressed]")


FD_SERVER = """
import os, resource, sys
import uvicorn
from testbed.config import validate
from testbed.plugins import load_plugins
from testbed.serve.guard import Limits
from testbed.serve.server import build_state, uvicorn_config
load_plugins()
cfg = validate({"name": "fds", "model": {"id": "random:tiny-llama"}, "baseline": "local", "arms": {"local": {}}})
state = build_state(cfg, "local")
state.limits = Limits(max_connections=10_000, head_timeout_s=2.0)     # no cap: let descriptors run out
config = uvicorn_config(state, "127.0.0.1", int(sys.argv[1]))
config.loop = "asyncio"         # uvloop (where installed) drops connections on EMFILE silently; asyncio logs each
server = uvicorn.Server(config)
config.load()
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 24, hard))
print("ready", flush=True)
server.run()
"""


def test_descriptor_exhaustion_logs_little_and_the_server_recovers(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(__file__).resolve().parents[1]
    err = open(tmp_path / "stderr", "w+")
    proc = subprocess.Popen([sys.executable, "-c", FD_SERVER, str(port)], cwd=root, stdout=subprocess.PIPE,
                            stderr=err, text=True, env={**os.environ, "PYTHONPATH": str(root)})
    try:
        assert proc.stdout.readline().strip() == "ready"
        srv = type("Srv", (), {"port": port})()
        assert wait_healthy(srv, 30)
        socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(120)]
        time.sleep(4)                                  # accept() fails with EMFILE for a while
        for s in socks:
            s.close()
        assert wait_healthy(srv, 15)
        assert post(srv, completion("after exhaustion"))[0] == 200
    finally:
        proc.terminate()
        proc.wait(10)
    log = (tmp_path / "stderr").read_text()
    assert "out of system resource" in log or "Too many open files" in log, log[-2000:]
    assert len(log) < 20_000 and log.count("Traceback") <= 2, (len(log), log[-2000:])
