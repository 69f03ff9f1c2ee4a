"""A minimal streaming HTTP client for OpenAI-compatible servers (stdlib http.client, one connection per call).

    for event in post_sse(Endpoint.parse("http://127.0.0.1:8000/v1"), "/completions", payload, headers, 60):
        ...   # each `data:` JSON object, as it arrives; ends at `data: [DONE]` or the end of the body

No third-party client: the engine runs many of these in threads and needs nothing else.
Errors are typed so the engine can decide what to retry: HttpStatusError (non-200, with the
server's OpenAI-style message and Retry-After) and StreamError (connection or protocol failures).
"""
import http.client
import json
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlsplit


class StreamError(Exception):
    """The connection failed or the stream was not what an OpenAI server sends."""


class HttpStatusError(Exception):
    def __init__(self, status: int, message: str, retry_after: float | None):
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.message, self.retry_after = status, message, retry_after

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int
    path: str                  # the base path, e.g. /v1

    @classmethod
    def parse(cls, url: str) -> "Endpoint":
        u = urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"base_url must be http(s)://host[:port]/path, got {url!r}")
        return cls(u.scheme, u.hostname, u.port or (443 if u.scheme == "https" else 80), u.path.rstrip("/"))

    def connect(self, timeout: float) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=timeout)


def post_sse(ep: Endpoint, route: str, payload: dict, headers: dict, timeout: float) -> Iterator[dict]:
    """POST `payload` to base path + route and yield each SSE `data:` object; closes the connection on exit."""
    conn = ep.connect(timeout)
    try:
        try:
            conn.request("POST", ep.path + route, body=json.dumps(payload).encode(),
                         headers={"Content-Type": "application/json", "Accept": "text/event-stream", **headers})
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            raise StreamError(f"{type(e).__name__}: {e}") from None
        if resp.status != 200:
            raise HttpStatusError(resp.status, error_message(resp.read()), retry_after(resp.getheader("Retry-After")))
        yield from _events(resp)
    finally:
        conn.close()


def _events(resp: http.client.HTTPResponse) -> Iterator[dict]:
    while True:
        try:
            line = resp.readline()
        except (OSError, http.client.HTTPException) as e:
            raise StreamError(f"stream broke: {type(e).__name__}: {e}") from None
        if not line:
            return                                    # body ended without [DONE]: the caller judges
        line = line.strip()
        if not line.startswith(b"data:"):
            continue                                  # blank separators, comments, event: lines
        data = line[5:].strip()
        if data == b"[DONE]":
            return
        try:
            yield json.loads(data)
        except json.JSONDecodeError:
            raise StreamError(f"not JSON in the stream: {data[:120]!r}") from None


def error_message(body: bytes) -> str:
    """The `error.message` of an OpenAI-style error body, or the body's start."""
    try:
        err = json.loads(body).get("error")
        return err.get("message", str(err)) if isinstance(err, dict) else str(err)
    except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
        return body[:200].decode(errors="replace")


def retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
