"""Build a server for one arm of an experiment config and run it (foreground, or a thread for tests).

    python -m testbed serve configs/remote.yaml --arm local --port 8000      # the CLI
    with BackgroundServer(build_state(cfg, "local")) as srv:                 # tests, benchmarks
        OpenAI(base_url=srv.base_url, api_key="-")

Only loopback addresses are bound unless `allow_remote` is given: an inference server on a
public interface with no key is an open compute endpoint.
"""
import ipaddress
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urlsplit

import torch

from testbed.arm import ArmPlan
from testbed.config import ExperimentConfig
from testbed.drive import run_all
from testbed.engines import ENGINES
from testbed.errors import UserError
from testbed.models import load_model, pick_device
from testbed.plugins import load_plugins
from testbed.request import Request
from testbed.serve.app import ServeState, create_app
from testbed.serve.build import Defaults
from testbed.serve.guard import guarded_h11, rate_limit_logs
from testbed.serve.loop import EngineLoop
from testbed.serve.metrics import scrape


def check_host(host: str, allow_remote: bool) -> None:
    if host == "localhost" or allow_remote:
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise UserError(f"--host {host} is not a loopback address",
                        "pass --allow-remote to serve on other interfaces (and set --api-key)")


def build_state(cfg: ExperimentConfig, arm: str, api_key: str | None = None, max_queue: int = 256,
                served_name: str | None = None, warmup: bool = True) -> ServeState:
    """Load the arm's model, start its engine loop, and warm the engine up with one short request."""
    load_plugins()
    if arm not in cfg.arms:
        raise UserError(f"--arm {arm!r} is not an arm of {cfg.name}", f"use one of: {', '.join(cfg.arms)}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    lm = load_model(cfg.arm_model(arm), pick_device(cfg.device))
    arm_cfg = cfg.arms[arm]
    try:        # the engine's own checks (the paged KV cache against free memory) before it allocates
        ENGINES.get(arm_cfg.engine).check_arm(lm, arm_cfg.options, arm_cfg.sections, [], [])
    except UserError as e:
        raise UserError(f"arms.{arm}: {e.message}", e.fix) from None
    plan = ArmPlan(arm, cfg, lm)
    if plan.preparers:
        print(f"[testbed] serve: arm {arm!r} has prompt-shaping sections ({', '.join(cfg.arms[arm].sections)}); "
              "they shape workload items, not chat messages, so the server does not apply them", file=sys.stderr)
    loop = EngineLoop(plan.new_engine, max_queue=max_queue)
    if warmup:
        _warm_up(loop, lm)
    names = [served_name or lm.spec_id] + [arm]
    return ServeState(loop.start(), lm, Defaults(plan.sampling, plan.max_new_tokens), names, api_key)


def _warm_up(loop: EngineLoop, lm) -> None:
    """One 4-token request before the loop thread starts, so the first client does not pay for lazy init."""
    ids = list(lm.tokenizer("warm up", add_special_tokens=False)["input_ids"]) or [0]
    req = Request(id="warmup", prompt_ids=ids, max_new_tokens=4, arrival_time=time.perf_counter())
    run_all(loop.engine, [req])


def uvicorn_config(state: ServeState, host: str, port: int, log_level: str = "warning"):
    import uvicorn
    # h11 (pure Python, no optional C extension) with a connection cap and request-head deadline (guard.py)
    limits = state.limits
    config = uvicorn.Config(create_app(state), host=host, port=port, log_level=log_level,
                            http=guarded_h11(limits), limit_concurrency=limits.max_connections,
                            timeout_keep_alive=limits.keep_alive_s, access_log=False)
    rate_limit_logs()
    return config


def serve_forever(state: ServeState, host: str, port: int, allow_remote: bool = False) -> None:
    import uvicorn
    check_host(host, allow_remote)
    print(f"[testbed] serving {state.model_names[0]} (arm {state.model_names[1]}) on http://{host}:{port}/v1",
          file=sys.stderr)
    try:
        uvicorn.Server(uvicorn_config(state, host, port, "info")).run()
    finally:
        state.loop.stop()
        state.tokenizer_pool.shutdown(wait=False)


class BackgroundServer:
    """uvicorn in a daemon thread on 127.0.0.1 and a free port (port 0); stops on exit."""

    def __init__(self, state: ServeState, host: str = "127.0.0.1", port: int = 0, start_timeout: float = 30.0):
        import uvicorn
        check_host(host, allow_remote=False)
        self.state = state
        self.server = uvicorn.Server(uvicorn_config(state, host, port))
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.host, self.start_timeout = host, start_timeout

    def __enter__(self) -> "BackgroundServer":
        self.thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    @property
    def port(self) -> int:
        return self.server.servers[0].sockets[0].getsockname()[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def metrics(self) -> dict[str, float]:
        """The server's /metrics right now, as {series: value}."""
        return scrape(f"http://{self.host}:{self.port}/metrics")

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.state.loop.stop()
        self.state.tokenizer_pool.shutdown(wait=False)


@contextmanager
def serving_remote_arms(cfg: ExperimentConfig) -> Iterator[ExperimentConfig]:
    """Serve the baseline arm on a free loopback port and point every loopback `openai` arm at it.

    For CI and quick checks: a config like configs/remote.yaml runs end to end without a server
    started by hand. Arms aimed at non-loopback hosts are left alone (and fail if unreachable).
    """
    remote = [a for a in cfg.arms.values() if a.engine == "openai" and _is_loopback_url(a.options.base_url)]
    if not remote:
        yield cfg
        return
    if cfg.arms[cfg.baseline].engine == "openai":
        raise UserError("serving_remote_arms: the baseline arm is itself remote", "make the baseline an in-process arm")
    with BackgroundServer(build_state(cfg, cfg.baseline)) as srv:
        for arm in remote:
            arm.options.base_url = srv.base_url
        yield cfg


def _is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
