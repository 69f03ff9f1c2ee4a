"""Pre-run checks (Engine.check_arm and section hooks) stop a bad arm before any run directory exists;
a request longer than the model's context fails alone and the run goes on, on hf and paged."""
import json
import textwrap
from typing import Any

import pytest

from testbed import runner
from testbed.arm import ArmPlan
from testbed.cli import main
from testbed.config import load_config
from testbed.engines.base import Engine
from testbed.engines.hf import HFEngine, HFOptions
from testbed.engines.paged.engine import PagedEngine, PagedOptions
from testbed.errors import UserError
from testbed.request import Request
from testbed.runner import Experiment, warmup_count
from testbed.sections import Section

BASE = """
name: checks
model: {id: random:tiny-llama}
threads: 1
workload: {dataset: golden/lookup, limit: 2, max_new_tokens: 4, warmup: 0}
baseline: static
arms:
  static: {engine: hf, batch_size: 2}
  paged: {engine: paged, block_size: 16, kv_budget_tokens: 32}
"""


def write(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_kv_budget_too_small_stops_before_any_directory(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(write(tmp_path, BASE)), "--out", str(out), "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "arms.paged: engine paged: KV budget of 32 tokens (2 blocks of 16)" in err
    assert "cannot hold request 'lookup-" in err and "prompt +" in err
    assert "fix: raise kv_budget_tokens to at least" in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


class Refuses(Section):
    """A strategy section with a pre-run check (how speculative and context plug theirs in)."""
    seen: Any = None

    def check_arm(self, lm, requests, items):
        self.seen = (lm, [r.id for r in requests], [it.id for it in items])
        raise UserError("speculative.draft: tokenizer differs", "use a draft with the target's tokenizer")


def test_section_hooks_run_through_the_runner_with_the_arm_named(tmp_path):
    cfg = load_config(write(tmp_path, BASE), overrides=["arms.paged.kv_budget_tokens=4096"], device="cpu")
    hook = Refuses()
    cfg.arms["static"]._sections["custom"] = hook
    with pytest.raises(UserError) as e:
        Experiment(cfg, progress=False)
    assert e.value.message == "arms.static: speculative.draft: tokenizer differs"
    assert e.value.fix == "use a draft with the target's tokenizer"
    assert hook.seen[1] == hook.seen[2] and len(hook.seen[1]) == 2     # every request, with its item


@pytest.mark.parametrize("engine, options", [(HFEngine, HFOptions()), (PagedEngine, PagedOptions(num_blocks=4))])
def test_check_arm_calls_every_section_hook(tiny_lm, engine, options):
    hook = Refuses()
    req = Request("r0", [1, 2, 3], max_new_tokens=2)
    with pytest.raises(UserError, match="tokenizer differs"):
        engine.check_arm(tiny_lm, options, {"speculative": hook, "plain": Section()}, [req], [])
    Engine.check_arm(tiny_lm, options, {"plain": Section()}, [req])      # the default hook: no error


def test_paged_check_skips_requests_beyond_the_context(tiny_lm):
    over = Request("long", [1] * tiny_lm.max_context, max_new_tokens=4)     # fails alone at run time
    options = PagedOptions(block_size=16, num_blocks=2)
    PagedEngine.check_arm(tiny_lm, options, {}, [over, Request("short", [1] * 20, max_new_tokens=4)])
    with pytest.raises(UserError, match=r"'short' \(40 prompt \+ 4 new tokens\)"):
        PagedEngine.check_arm(tiny_lm, options, {}, [over, Request("short", [1] * 40, max_new_tokens=4)])


def long_dataset(tmp_path, n_words: int) -> str:
    items = [{"id": "short-1", "question": "What is the capital of France?", "answers": ["Paris"],
              "chunks": [{"id": "c1", "text": "Paris is the capital of France."}]},
             {"id": "too-long", "question": "What colour is the sky?", "answers": ["blue"],
              "chunks": [{"id": "c2", "text": " ".join(["sky"] * n_words)}]},
             {"id": "short-2", "question": "What is two plus two?", "answers": ["four"]}]
    path = tmp_path / "long.jsonl"
    path.write_text("\n".join(json.dumps(it) for it in items) + "\n")
    return str(path)


def test_request_beyond_context_fails_alone_on_hf_and_paged(tmp_path):
    text = BASE.replace("dataset: golden/lookup, limit: 2", f"dataset: {long_dataset(tmp_path, 6000)}")
    cfg = load_config(write(tmp_path, text), overrides=["arms.paged.kv_budget_tokens=512"], device="cpu")
    exp = Experiment(cfg, progress=False)          # the KV check passes: the long request is not the arm's fault
    run_dir = exp.run(tmp_path / "out")
    records = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]
    assert len(records) == 6
    for r in records:
        if r["item_id"] == "too-long":
            assert r["status"] == "failed" and "exceeds the model's context of 4096" in r["error"]
            assert r["prompt_tokens"] > 4096 and r["output_tokens"] == 0
        else:
            assert r["status"] == "ok" and r["output_tokens"] == 4
    for arm in ("static", "paged"):
        assert exp.summary["arms"][arm]["n_failed"] == 1 and exp.summary["arms"][arm]["n_ok"] == 2


def test_a_context_budget_below_the_question_stops_before_any_directory(tmp_path, capsys):
    text = BASE.replace("  paged: {engine: paged, block_size: 16, kv_budget_tokens: 32}",
                        "  tight: {engine: hf, context: {steps: [{name: budget, budget_tokens: 2}]}}")
    out = tmp_path / "out"
    assert main(["run", str(write(tmp_path, text)), "--out", str(out), "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "arms.tight.context.steps[0].budget_tokens = 2 is smaller than the" in err
    assert not out.exists()


def test_random_prompts_beyond_the_context_stop_before_any_prompt_is_built(tmp_path, capsys):
    """Million-token prompts took minutes (and memory) to build before every request failed on the context.

    1,000,000 is under the load-time bound on lengths (2^20), so the context check is the one that speaks."""
    text = BASE.replace("dataset: golden/lookup,", "dataset: random, random: {input_len: 1000000, output_len: 4},")
    out = tmp_path / "out"
    assert main(["run", str(write(tmp_path, text)), "--out", str(out), "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "workload.random: requests of up to 1000004 tokens (prompt + output) are beyond the context" in err
    assert "fix: lower input_len" in err and not out.exists()


def test_bad_speculative_sampling_stops_before_any_directory(tmp_path, capsys):
    text = BASE.replace("  paged: {engine: paged, block_size: 16, kv_budget_tokens: 32}",
                        "  spec: {engine: hf, sampling: {temperature: 0.00001},"
                        " speculative: {method: prompt_lookup, num_draft_tokens: 3}}")
    out = tmp_path / "out"
    code = main(["run", str(write(tmp_path, text)), "--out", str(out), "--device", "cpu", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "arms.spec.sampling" in err, err
    assert not out.exists()


def test_an_error_found_mid_run_keeps_what_ran(tmp_path, monkeypatch):
    cfg = load_config(write(tmp_path, BASE), overrides=["arms.paged.kv_budget_tokens=4096"], device="cpu")
    exp = Experiment(cfg, progress=False)
    real = exp._run_arm

    def second_arm_fails(name, *args):
        if name == "paged":
            raise UserError("arms.paged.routing.router.folds: too few labelled items", "lower folds")
        return real(name, *args)

    monkeypatch.setattr(exp, "_run_arm", second_arm_fails)
    with pytest.raises(UserError):
        exp.run(tmp_path / "out")
    run_dir = next((tmp_path / "out").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["incomplete"] is True and list(summary["arms"]) == ["static"]
    lines = (run_dir / "requests.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["arm"] == "static" for line in lines)


def test_warmup_all_answers_every_item_once_untimed_and_records_none(tmp_path, monkeypatch):
    seen = []
    original = HFEngine.add_request
    monkeypatch.setattr(HFEngine, "add_request", lambda self, req: (seen.append(req.id), original(self, req))[1])
    cfg = load_config(write(tmp_path, BASE), overrides=["workload.warmup=all", "arms.paged.kv_budget_tokens=4096"],
                      device="cpu")
    run_dir = Experiment(cfg, progress=False).run(tmp_path / "out")
    recs = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]
    arm = sorted(i for i in seen if not i.startswith("probe-"))        # the hf arm (probes: the diagnosis's)
    assert arm == ["lookup-01", "lookup-02", "warmup-lookup-01", "warmup-lookup-02"]
    assert not any(r["request_id"].startswith("warmup") for r in recs) and len(recs) == 4


def test_warmup_auto_is_all_on_cuda_and_one_elsewhere_and_all_warms_an_arms_first_run_only(tmp_path, monkeypatch):
    assert [warmup_count("auto", "cuda:0", 5, True), warmup_count("auto", "cuda:0", 5, False)] == [5, 1]
    assert [warmup_count("auto", "cpu", 5, True), warmup_count("all", "cpu", 5, False)] == [1, 1]
    assert [warmup_count(3, "cuda:0", 5, True), warmup_count(0, "cpu", 5, True)] == [3, 0]
    seen = []
    original = HFEngine.add_request
    monkeypatch.setattr(HFEngine, "add_request", lambda self, req: (seen.append(req.id), original(self, req))[1])
    cfg = load_config(write(tmp_path, BASE.replace(", warmup: 0", "")), overrides=["arms.paged.kv_budget_tokens=4096",
                      "repeats=2"], device="cpu")
    assert cfg.workload.warmup == "auto"                                # the default: 1 on the CPU, every pass
    Experiment(cfg, progress=False).run(tmp_path / "out")
    assert [i for i in seen if i.startswith("warmup-")] == ["warmup-lookup-01"] * 2


def test_warmup_takes_a_count_or_all(tmp_path):
    with pytest.raises(UserError) as e:
        load_config(write(tmp_path, BASE), overrides=["workload.warmup=some"], device="cpu")
    assert "workload.warmup" in e.value.message


class Counting(Engine):
    """An engine that only counts its close() calls."""

    def __init__(self, *args):
        super().__init__(None, None)
        self.closed = 0

    def add_request(self, req):
        pass

    def step(self):
        return []

    def has_unfinished(self):
        return False

    def close(self):
        self.closed += 1


class BuildsEngines(Section):
    """A section that builds the arm's engine itself, as routing does."""
    built: list = []

    def new_engine(self, engine_cls, options, sections):
        self.built.append(Counting())
        return self.built[-1]


def test_a_plan_closes_every_engine_it_built(tmp_path):
    cfg = load_config(write(tmp_path, BASE), overrides=["arms.paged.kv_budget_tokens=4096"], device="cpu")
    section = BuildsEngines(built=[])
    cfg.arms["static"]._sections["custom"] = section
    plan = ArmPlan("static", cfg, None)
    first, second = plan.new_engine(), plan.new_engine()     # a warm-up's engine, then the timed run's
    assert (first.closed, second.closed) == (1, 0)
    plan.close()
    assert (first.closed, second.closed) == (1, 1)
    with Counting() as engine:
        pass
    assert engine.closed == 1
