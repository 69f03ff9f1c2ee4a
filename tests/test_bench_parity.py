"""scripts/bench_parity.py's comparisons (testbed/metrics/parity.py): TTFT paired prompt by
prompt, and the server's own TTFT read from either server's /metrics (testbed serve's and vLLM's series names)."""
import argparse
import importlib.util
import json
import os
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import psutil
import pytest

from testbed.metrics.parity import paired_ttft

spec = importlib.util.spec_from_file_location("bench_parity", Path(__file__).parents[1] / "scripts/bench_parity.py")
bench_parity = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_parity)

METRICS = """# HELP testbed_time_to_first_token_seconds_sum Arrival to first token, summed.
testbed_time_to_first_token_seconds_sum 1.5
testbed_time_to_first_token_seconds_count 30
vllm:time_to_first_token_seconds_sum{engine="0",model_name="m"} 0.25
vllm:time_to_first_token_seconds_count{engine="0",model_name="m"} 2
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="m"} 2
testbed_engine_steps_total 99
vllm:request_time_per_output_token_seconds_sum{engine="0",model_name="m"} 0.06
vllm:request_time_per_output_token_seconds_count{engine="0",model_name="m"} 3
"""


class Metrics(BaseHTTPRequestHandler):
    def do_GET(self):
        body = METRICS.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_server_ttft_sums_every_ttft_series_and_nothing_else(http_stub):
    with http_stub(Metrics) as port:
        ttft, tpot = bench_parity.server_sums(port, *bench_parity.SERVER_SERIES)
        assert ttft == pytest.approx((1.75, 32))       # testbed serve's and vLLM's TTFT series, nothing else
        assert tpot == pytest.approx((0.06, 3))        # vLLM's engine-clock TPOT; testbed serve has none
        assert bench_parity.mean_ms((0.0, 0), tpot) == pytest.approx(20.0)
        assert bench_parity.mean_ms(tpot, tpot) is None


def test_paired_ttft_compares_prompt_i_with_prompt_i_from_send():
    vllm = {"ttfts": [0.050, 0.060, 0.070]}
    records = [{"item_id": f"prompt-{i}", "status": "ok", "send_s": 10.0 + i, "first_token_s": 10.0 + i + t}
               for i, t in ((2, 0.068), (0, 0.055), (1, 0.059))]     # out of order, as requests finish
    out = paired_ttft(vllm, records)
    assert out == {"pairs": 3, "ttft_diff_ms_p50": pytest.approx(-1.0), "testbed_higher": 1}


def test_ttft_tail_names_the_slowest_prompts_with_the_other_clients_time():
    spec = importlib.util.spec_from_file_location("parity_pairs", Path(__file__).parents[1] / "scripts/parity_pairs.py")
    pairs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pairs)
    x = np.arange(1.0, 33.0)
    x[5] = np.nan                                  # a failed request: left out, and never among the slowest
    other = x * 10
    t = pairs.tail(x, np.nan_to_num(other), np.random.default_rng(0))
    assert t["slowest"] == [(31, 32.0, 320.0), (30, 31.0, 310.0), (29, 30.0, 300.0)]
    assert t["p99"] == pytest.approx(np.percentile(np.delete(np.arange(1.0, 33.0), 5), 99))
    assert t["p99_sd"] > 0                         # resampled over requests, not a fixed value


class Completions(BaseHTTPRequestHandler):
    """Streams two tokens per completion and keeps each request's prompt and whether this test's
    own process sent it (the peer's socket is one of its open connections, looked up while open)."""
    seen: list[tuple[str, bool]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((body["prompt"], self.client_address[1] in client_ports(os.getpid())))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for i, reason in ((5, None), (6, "length")):
            chunk = {"choices": [{"index": 0, "text": "a", "token_ids": [i], "finish_reason": reason}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")


def client_ports(pid: int) -> set[int]:
    return {c.laddr.port for c in psutil.Process(pid).net_connections("tcp")}


def test_the_process_client_runs_the_prompts_in_a_child_and_returns_its_records(http_stub, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    texts = [f"prompt number {i}" for i in range(3)]
    prompts.write_text("".join(json.dumps({"prompt": t, "output_tokens": 2}) + "\n" for t in texts))
    args = argparse.Namespace(model="random:tiny-llama", output_len=2, seed=0, rate=50.0, max_concurrency=2)
    Completions.seen = []
    with http_stub(Completions) as port:
        metrics, run_dir, records = bench_parity.run_testbed_client_process(port, prompts, tmp_path / "out", args)
    assert run_dir.parent == tmp_path / "out" and (run_dir / "requests.jsonl").exists()
    assert sorted(r["item_id"] for r in records) == ["prompt-0", "prompt-1", "prompt-2"]
    assert [r["status"] for r in records] == ["ok"] * 3 and all(r["output_tokens"] == 2 for r in records)
    assert metrics["n_ok"] == 3 and metrics["_client_cpu_s"] > 0       # the child's CPU, start-up included
    # every prompt reached the server (one warm-up request too), none of them sent by this process
    assert sorted({p for p, _ in Completions.seen}) == texts
    assert not any(ours for _, ours in Completions.seen)


def test_a_failing_process_client_stops_with_its_log(tmp_path):
    prompts = tmp_path / "missing.jsonl"        # the child cannot load it: a user error, exit 2
    args = argparse.Namespace(model="random:tiny-llama", output_len=2, seed=0, rate=50.0, max_concurrency=2)
    with pytest.raises(SystemExit, match="exited with 2; its output: .*client-.*\\.log"):
        bench_parity.run_testbed_client_process(9, prompts, tmp_path, args)
    log = next(tmp_path.glob("client-*.log")).read_text()
    assert "missing.jsonl" in log


def test_pin_without_two_cpus_is_one_clear_line_and_exit_2():
    import subprocess
    import sys
    done = subprocess.run([sys.executable, str(Path(__file__).parents[1] / "scripts/bench_parity.py"), "--pin"],
                          capture_output=True, text=True, preexec_fn=lambda: os.sched_setaffinity(0, {0}), timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == \
        "bench_parity.py: error: --pin needs CPUs 0 and 1 (this process may use [0]); run without --pin"
    assert "Traceback" not in done.stderr
