"""Shared fixtures: tiny random models (fixed seed, milliseconds), a cache dir per session, and
loopback HTTP stub servers."""
import threading
from contextlib import contextmanager
from http.server import ThreadingHTTPServer

import pytest
import torch

from testbed.config import ModelSpec
from testbed.models import load_model
from testbed.plugins import load_plugins

load_plugins()      # every engine and section registered, as the CLI does before it loads a config


@pytest.fixture(scope="session")
def tiny_lm():
    torch.set_num_threads(1)
    return load_model(ModelSpec(id="random:tiny-llama", dtype="float32"), "cpu")


@pytest.fixture(scope="session")
def tiny_qwen():
    return load_model(ModelSpec(id="random:tiny-qwen2", dtype="float32"), "cpu")


@pytest.fixture(scope="session")
def chaotic_lm():
    """tiny-llama with large random weights: varied greedy text and peaked distributions, so drafts
    (speculative decoding) are often rejected."""
    torch.set_num_threads(1)
    lm = load_model(ModelSpec(id="random:tiny-llama", dtype="float32"), "cpu")
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in lm.model.parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=g) * 0.25)
    return lm


@contextmanager
def _serving(handler):
    quiet = type(handler.__name__, (handler,), {"log_message": lambda self, *args: None})   # no line per request
    srv = ThreadingHTTPServer(("127.0.0.1", 0), quiet)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture(scope="session")
def http_stub():
    """`with http_stub(Handler) as port:` a loopback HTTP server with that handler (its request log
    silenced), on a free port."""
    return _serving
