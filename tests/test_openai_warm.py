"""warm_connections: the openai engine opens its pool before the first request, so no timed request
pays a TCP connect, and a server that refuses or ignores the warm-up neither hangs nor stops the run."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from testbed.config import validate
from testbed.drive import drive
from testbed.engines.openai import OpenAIEngine, OpenAIOptions
from testbed.errors import UserError
from testbed.request import Request

LAST = "data: " + json.dumps({"choices": [{"index": 0, "text": "a", "token_ids": [5], "finish_reason": "length"}]})
LOCK = threading.Lock()


class KeepAlive(BaseHTTPRequestHandler):
    """HTTP/1.1 with lengths, so connections stay open; counts the connections it accepted."""
    protocol_version = "HTTP/1.1"
    connections = 0
    get_delay_s = 0.0

    def handle(self):               # once per connection; the base class loops over its requests
        with LOCK:
            KeepAlive.connections += 1
        try:
            super().handle()
        except ConnectionError:     # the client gave up on a stalled warm-up and closed the connection
            pass

    def _send(self, kind: str, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        time.sleep(KeepAlive.get_delay_s)
        self._send("application/json", b'{"object": "list", "data": []}')

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(0.1)             # long enough that the requests overlap: each needs its own connection
        self._send("text/event-stream", f"{LAST}\n\ndata: [DONE]\n\n".encode())


@pytest.fixture
def server(http_stub):
    KeepAlive.connections, KeepAlive.get_delay_s = 0, 0.0
    with http_stub(KeepAlive) as port:
        yield f"http://127.0.0.1:{port}/v1"


def run_at_once(engine: OpenAIEngine, n: int) -> list[Request]:
    done: list[Request] = []
    make = lambda i, arrival: Request(id=str(i), prompt_ids=[1], prompt_text="x", max_new_tokens=1,  # noqa: E731
                                      arrival_time=arrival)
    drive(engine, list(range(n)), make, [0.0] * n, None, done.append)
    return done


@pytest.mark.parametrize("warm, new_in_timed_run", [(4, 0), (0, 4)])
def test_a_warm_pool_opens_no_connection_during_the_timed_requests(tiny_lm, server, warm, new_in_timed_run):
    engine = OpenAIEngine(tiny_lm, OpenAIOptions(base_url=server, served_model_name="m", concurrency=4,
                                                 warm_connections=warm, max_retries=0))
    before = KeepAlive.connections
    done = run_at_once(engine, 4)
    engine.close()
    assert [r.status for r in done] == ["finished"] * 4
    assert before == warm and KeepAlive.connections - before == new_in_timed_run
    assert engine.stats().get("openai_warm_connections", 0) == warm


def test_a_refused_warm_up_is_counted_with_its_reason_and_the_run_goes_on(tiny_lm, capsys):
    t = time.perf_counter()
    engine = OpenAIEngine(tiny_lm, OpenAIOptions(base_url="http://127.0.0.1:9/v1", served_model_name="m",
                                                 concurrency=3, warm_connections=3, max_retries=0))
    done = run_at_once(engine, 1)
    engine.close()
    assert time.perf_counter() - t < 5
    assert engine.stats()["openai_warm_failed"] == 3 and engine.stats()["openai_warm_connections"] == 0
    assert len(engine.warm_errors) == 3 and "refused or server unreachable" in engine.warm_errors[0]
    assert "warm_connections: 3 of 3 failed" in capsys.readouterr().err
    assert done[0].status == "failed" and "refused" in done[0].error     # the request's own reason, as unwarmed


def test_a_warm_up_the_server_does_not_answer_ends_at_timeout_s(tiny_lm, server):
    KeepAlive.get_delay_s = 2.0
    t = time.perf_counter()
    engine = OpenAIEngine(tiny_lm, OpenAIOptions(base_url=server, served_model_name="m", concurrency=2,
                                                 warm_connections=2, timeout_s=0.4, max_retries=0))
    took = time.perf_counter() - t
    done = run_at_once(engine, 2)
    engine.close()
    assert took < 1.5 and engine.stats()["openai_warm_failed"] == 2
    assert "within timeout_s=0.4" in engine.warm_errors[0]
    assert [r.status for r in done] == ["finished"] * 2


def test_warm_connections_above_concurrency_is_a_config_error_naming_the_field():
    cfg = {"name": "w", "model": {"id": "random:tiny-llama"}, "baseline": "a",
           "arms": {"a": {"engine": "openai", "concurrency": 2, "warm_connections": 8}}}
    with pytest.raises(UserError, match="warm_connections"):
        validate(cfg)
