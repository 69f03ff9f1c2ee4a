"""The openai engine against servers that misbehave: every such request ends failed with its reason,
within its timeouts, and the run never hangs (unreachable, refused, reset, non-SSE garbage, a stall)."""
import datetime
import json
import socket
import time
from http.server import BaseHTTPRequestHandler

import pytest

from testbed.engines.openai import OpenAIEngine, OpenAIOptions
from testbed.request import Request

CHUNK = "data: " + json.dumps({"choices": [{"index": 0, "text": "a", "token_ids": [5], "finish_reason": None}]})
LAST = "data: " + json.dumps({"choices": [{"index": 0, "text": "a", "token_ids": [5], "finish_reason": "length"}]})


class Bad(BaseHTTPRequestHandler):
    mode = "garbage"

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.mode == "garbage":
            body = b"<html>not an API</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        if self.mode == "sse_garbage":
            self.wfile.write(b"data: {not json\n\n")
            return
        if self.mode == "ok":
            self.wfile.write(f"{LAST}\n\ndata: [DONE]\n\n".encode())
            return
        self.wfile.write(f"{CHUNK}\n\n".encode())
        self.wfile.flush()
        if self.mode == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.connection.close()
        elif self.mode == "stall":
            time.sleep(3)
        elif self.mode == "error_event":      # vLLM's shape for an error after streaming began, then silence
            self.wfile.write(b'data: {"error": {"message": "engine died", "code": 500}}\n\n')
            self.wfile.flush()
            time.sleep(3)


@pytest.fixture(scope="module")
def bad_server(http_stub):
    with http_stub(Bad) as port:
        yield f"http://127.0.0.1:{port}/v1"


def run_one(lm, url, **opts):
    engine = OpenAIEngine(lm, OpenAIOptions(base_url=url, backoff_s=0.01, served_model_name="m", **opts))
    req = Request(id="r", prompt_ids=[1], prompt_text="x", max_new_tokens=4, arrival_time=time.perf_counter())
    t = time.perf_counter()
    engine.add_request(req)
    while engine.has_unfinished() and time.perf_counter() - t < 20:
        engine.step()
    engine.close()
    return req, time.perf_counter() - t


@pytest.mark.parametrize("mode, reason", [("garbage", "not an SSE stream"), ("sse_garbage", "not JSON"),
                                          ("reset", "after 1 chunks"), ("stall", "stalled")])
def test_a_misbehaving_server_fails_the_request_with_its_reason(tiny_lm, bad_server, mode, reason):
    Bad.mode = mode
    req, took = run_one(tiny_lm, bad_server, max_retries=1, timeout_s=0.5)
    assert req.status == "failed" and reason in req.error, req.error
    assert took < 2.5           # the stall is cut at timeout_s, not at the server's 3 s


def test_an_error_event_mid_stream_fails_the_request_when_it_arrives(tiny_lm, bad_server):
    Bad.mode = "error_event"
    req, took = run_one(tiny_lm, bad_server, max_retries=0, timeout_s=10)
    assert req.status == "failed" and "server error mid-stream" in req.error and "engine died" in req.error
    assert took < 2             # not at the server's 3 s of silence, nor at timeout_s


def test_request_timeout_bounds_a_slow_request(tiny_lm, bad_server):
    Bad.mode = "stall"
    req, took = run_one(tiny_lm, bad_server, max_retries=0, timeout_s=10, request_timeout_s=0.3)
    assert req.status == "failed" and "request_timeout_s" in req.error and took < 2


def test_a_body_json_cannot_encode_fails_the_request_instead_of_hanging(tiny_lm, bad_server, monkeypatch):
    Bad.mode = "ok"        # the body is encoded before the arrival, outside the attempts' error handling
    # a date in extra_body is refused at load now (tests/test_reliability_input.py): make the body here
    monkeypatch.setattr(OpenAIEngine, "payload", lambda self, req: {"since": datetime.date(2026, 1, 1)})
    req, took = run_one(tiny_lm, bad_server)
    assert req.status == "failed" and "request body" in req.error and took < 2


def test_unreachable_host_fails_fast(tiny_lm):
    req, took = run_one(tiny_lm, "http://127.0.0.1:9/v1", max_retries=1)
    assert req.status == "failed" and "refused or server unreachable" in req.error and took < 5


def test_an_open_loop_schedule_is_sent_on_time_by_the_event_loop(tiny_lm, bad_server):
    from testbed.drive import drive
    Bad.mode = "ok"
    engine = OpenAIEngine(tiny_lm, OpenAIOptions(base_url=bad_server, served_model_name="m", max_retries=0))
    done = []
    make = lambda i, arrival: Request(id=str(i), prompt_ids=[1], prompt_text="x", max_new_tokens=4,  # noqa: E731
                                      arrival_time=arrival)
    drive(engine, [0, 1, 2], make, [0.0, 0.25, 0.5], None, done.append)
    engine.close()
    assert sorted(r.status for r in done) == ["finished"] * 3
    arrivals = sorted(r.arrival_time for r in done)
    assert arrivals[2] - arrivals[0] == pytest.approx(0.5)
    assert all(0 <= r.send_time - r.arrival_time < 0.02 for r in done)      # sent at its arrival, not before
