"""/metrics in the Prometheus text format (version 0.0.4), written by hand: a few families, no client library.

Families: request outcomes and token totals (counters), requests running / waiting and the
tokens they hold (gauges), HTTP rejections by status, TTFT sum/count, engine step totals, and
every numeric key of engine.stats() as `testbed_engine_<key>` (KV accounting, speculative
acceptance, paged block peaks — whatever the engine reports), and, for engines with a
`gauges()` method (paged), the KV cache right now: `testbed_engine_kv_blocks_in_use`, ...
"""
import math
import re
import urllib.request
from collections import Counter

from testbed.serve.loop import EngineLoop

PREFIX = "testbed"


def scrape(url: str, timeout: float = 10.0) -> dict[str, float]:
    """GET a /metrics page and read it back as {series with labels: value}; comment lines skipped."""
    text = urllib.request.urlopen(url, timeout=timeout).read().decode()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return {k: float(v) for k, v in (line.rsplit(" ", 1) for line in lines)}


def family(name: str, kind: str, help_: str, samples: list[tuple[dict, float]]) -> list[str]:
    """One metric family: # HELP, # TYPE, then `name{labels} value` lines."""
    lines = [f"# HELP {PREFIX}_{name} {help_}", f"# TYPE {PREFIX}_{name} {kind}"]
    for labels, value in samples:
        lab = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
        lines.append(f"{PREFIX}_{name}{{{lab}}} {_num(value)}" if lab else f"{PREFIX}_{name} {_num(value)}")
    return lines


def render(loop: EngineLoop, http_errors: Counter, model: str) -> str:
    c, now = loop.counters, loop.snapshot()
    lines: list[str] = []
    lines += family("requests_total", "counter", "Requests completed, by outcome (stop, length, failed, aborted).",
                    [({"outcome": k}, v) for k, v in sorted(c.outcomes.items())] or [({"outcome": "stop"}, 0)])
    lines += family("http_rejections_total", "counter", "Requests refused before the engine, by HTTP status.",
                    [({"status": k}, v) for k, v in sorted(http_errors.items())] or [({"status": "429"}, 0)])
    lines += family("prompt_tokens_total", "counter", "Prompt tokens of completed requests.", [({}, c.prompt_tokens)])
    lines += family("generation_tokens_total", "counter", "Output tokens of completed requests.",
                    [({}, c.generation_tokens)])
    lines += family("requests_running", "gauge", "Requests the engine is generating for.", [({}, now["running"])])
    lines += family("requests_waiting", "gauge", "Requests queued for the engine (queue depth).",
                    [({}, now["waiting"])])
    lines += family("live_tokens", "gauge", "Prompt + output tokens of requests in flight (KV held by them).",
                    [({}, now["live_tokens"])])
    lines += family("max_queue", "gauge", "Most requests in flight before 503.", [({}, loop.max_queue)])
    lines += family("time_to_first_token_seconds_sum", "counter", "Arrival to first token, summed.",
                    [({}, c.ttft_seconds)])
    lines += family("time_to_first_token_seconds_count", "counter", "Requests with a first token.",
                    [({}, c.ttft_count)])
    lines += family("engine_steps_total", "counter", "Engine steps run.", [({}, c.steps)])
    lines += family("engine_step_seconds_total", "counter", "Time spent in engine steps.", [({}, c.step_seconds)])
    lines += family("engine_errors_total", "counter", "Engine steps that raised (the engine was rebuilt).",
                    [({}, c.engine_errors)])
    engine = loop.engine
    lines += engine_families(engine.stats())
    gauges = getattr(engine, "gauges", None)       # live KV state; engines without one report totals only
    if gauges is not None:
        lines += engine_families(gauges(), "now")
    lines += family("info", "gauge", "The served model.", [({"model": model}, 1)])
    return "\n".join(lines) + "\n"


def engine_families(stats: dict, when: str = "since the server started") -> list[str]:
    """Each numeric engine stat as a gauge (names sanitised to [a-z0-9_])."""
    lines: list[str] = []
    for key, value in sorted(stats.items()):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        name = "engine_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)
        lines += family(name, "gauge", f"engine['{key}'] {when}.", [({}, value)])
    return lines


def _num(v: float) -> str:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return "NaN" if math.isnan(v) else ("+Inf" if v > 0 else "-Inf")
    return repr(int(v)) if float(v).is_integer() else repr(float(v))


def _escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
