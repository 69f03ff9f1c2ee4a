"""The vllm engine's mapping onto vLLM, checked against a fake `vllm` module (no GPU, no vllm)."""
import sys
import types
from types import SimpleNamespace as NS

import pytest
import torch

from testbed.drive import run_all
from testbed.errors import UserError
from testbed.request import Request, SamplingParams


class FakeLLMEngine:
    """Emits one token per step per request (two on the 2nd step, like a speculative step)."""

    def __init__(self, args):
        self.args = args
        self.requests = {}
        self.cache_config = NS(num_gpu_blocks=64)
        self.usage = 0.0

    @classmethod
    def from_engine_args(cls, args):
        return cls(args)

    def add_request(self, rid, prompt, params):
        self.requests[rid] = {"prompt": prompt, "params": params, "tokens": [], "steps": 0}

    def step(self):
        outs = []
        for rid, r in list(self.requests.items()):
            r["steps"] += 1
            r["tokens"] += [100 + len(r["tokens"])] * (2 if r["steps"] == 2 else 1)
            r["tokens"] = r["tokens"][:r["params"].kw["max_tokens"]]
            finished = len(r["tokens"]) >= r["params"].kw["max_tokens"]
            outs.append(NS(request_id=rid, finished=finished,
                           outputs=[NS(token_ids=list(r["tokens"]), finish_reason="length" if finished else None)]))
            if finished:
                del self.requests[rid]
        self.usage = 0.25 * len(self.requests)
        return outs

    def get_metrics(self):
        return [NS(name="vllm:num_requests_running", value=len(self.requests)),
                NS(name="vllm:kv_cache_usage_perc", value=self.usage)]


class Kw:
    def __init__(self, **kw):
        self.kw = kw


@pytest.fixture
def fake_vllm(monkeypatch):
    mod = types.ModuleType("vllm")
    mod.LLMEngine, mod.EngineArgs, mod.SamplingParams = FakeLLMEngine, Kw, Kw
    monkeypatch.setitem(sys.modules, "vllm", mod)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    return mod


def engine_for(lm, **opts):
    from testbed.engines.vllm import VLLMEngine
    return VLLMEngine(lm, VLLMEngine.Options(**opts))


def test_requests_map_to_token_prompts_and_sampling_params(fake_vllm, tiny_lm):
    eng = engine_for(tiny_lm, kv_budget_tokens=256, block_size=16)
    assert eng.engine.args.kw["num_gpu_blocks_override"] == 16 and eng.engine.args.kw["dtype"] == "float32"
    req = Request(id="a", prompt_ids=[5, 6, 7], max_new_tokens=4, eos_token_ids=(2,),
                  sampling=SamplingParams(temperature=0.7, top_p=0.9, top_k=0, seed=3))
    eng.add_request(req)
    sent = eng.engine.requests["a"]
    assert sent["prompt"] == {"prompt_token_ids": [5, 6, 7]}
    kw = sent["params"].kw
    assert (kw["temperature"], kw["top_p"], kw["top_k"], kw["seed"], kw["max_tokens"]) == (0.7, 0.9, -1, 3, 4)
    assert kw["stop_token_ids"] == [2] and kw["ignore_eos"] is False


def test_streamed_tokens_get_per_token_times_and_finish(fake_vllm, tiny_lm):
    eng = engine_for(tiny_lm)
    reqs = [Request(id=i, prompt_ids=[1, 2], max_new_tokens=n) for i, n in (("a", 4), ("b", 2))]
    done = run_all(eng, reqs)
    a = next(r for r in done if r.id == "a")
    assert a.output_ids == [100, 101, 101, 103] and a.finish_reason == "length"
    assert a.token_times[1] == a.token_times[2] and a.token_times[0] < a.token_times[1]   # 2 tokens, one step
    st = eng.stats()
    assert st["max_concurrent_seqs"] == 2 and st["vllm_kv_cache_usage_peak_pct"] == 50.0
    assert st["kv_capacity_tokens"] == 64 * 16


def test_random_models_are_saved_for_vllm_to_load(fake_vllm, tiny_lm, tmp_path, monkeypatch):
    monkeypatch.setenv("TESTBED_CACHE", str(tmp_path))
    eng = engine_for(tiny_lm)
    assert (tmp_path / "random" / "tiny-llama" / "config.json").exists()
    assert eng.engine.args.kw["model"].endswith("tiny-llama")


def test_missing_vllm_is_a_user_error(monkeypatch, tiny_lm):
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(UserError, match="not installed"):
        engine_for(tiny_lm)


def test_no_gpu_is_a_user_error(fake_vllm, monkeypatch, tiny_lm):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match="no CUDA device"):
        engine_for(tiny_lm)
