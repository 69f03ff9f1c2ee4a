"""Interleaved arms: the pass order (pure), identical outputs in either order, and injected drift.

The drift tests slow the hf engine's step by an amount that grows with wall time (a machine getting
busier): run one after the other, two identical arms differ; interleaved, their paired ratio's interval
holds 1.0. A real 2x difference (a constant delay on one arm) must still read as 2x.
"""
import json
import math
import time

import pytest
import torch

from testbed.arm import ArmPlan
from testbed.config import load_config
from testbed.engines.hf import HFEngine
from testbed.engines.paged.engine import PagedEngine
from testbed.errors import UserError
from testbed.metrics import footprint
from testbed.models import load_model
from testbed.report.drift import drift_section
import testbed.runner as runner_module
from testbed.runner import Experiment
from testbed.schedule import auto_block_size, order_info, plan_passes, rotated

OFFLINE = [(None, {"kind": "offline"})]


def order(passes):
    return "".join(p.arm for p in passes)


def test_interleaved_offline_alternates_abba_by_block():
    passes = plan_passes(["A", "B"], list(range(8)), OFFLINE, 1, "interleaved", 2)
    assert order(passes) == "ABBAABBA"
    assert [p.items for p in passes[:4]] == [[0, 1], [0, 1], [2, 3], [2, 3]]
    assert [p.first for p in passes] == [True, True] + [False] * 6     # one warm-up per arm, before block 0


def test_three_arms_form_a_latin_square():
    passes = plan_passes(["A", "B", "C"], list(range(6)), OFFLINE, 1, "interleaved", 2)
    rounds = [order(passes[i:i + 3]) for i in range(0, 9, 3)]
    assert rounds == ["ABC", "BCA", "CAB"]
    for pos in range(3):      # every arm in every position once
        assert sorted(r[pos] for r in rounds) == ["A", "B", "C"]


def test_sequential_runs_the_same_blocks_arm_by_arm():
    seq = plan_passes(["A", "B"], list(range(6)), OFFLINE, 2, "sequential", 2)
    assert order(seq) == "AAABBB" * 2
    inter = plan_passes(["A", "B"], list(range(6)), OFFLINE, 2, "interleaved", 2)
    key = lambda p: (p.arm, p.repeat, p.block, tuple(p.items))     # noqa: E731
    assert sorted(map(key, seq)) == sorted(map(key, inter))


def test_arrival_driven_alternates_per_repeat_and_rate():
    poisson = [(None, {"kind": "poisson", "rate": 1.0})]
    passes = plan_passes(["A", "B"], list(range(5)), poisson, 3, "interleaved", 2)
    assert order(passes) == "ABBAAB" and all(len(p.items) == 5 for p in passes)
    sweep = [(1.0, {"kind": "poisson"}), (2.0, {"kind": "poisson"})]
    passes = plan_passes(["A", "B"], [0], sweep, 2, "interleaved", 1)
    at_rate_1 = [order(passes[i:i + 2]) for i in range(0, 8, 2) if passes[i].rate == 1.0]
    assert at_rate_1 == ["AB", "BA"]            # each rate sees both orders across repeats
    assert order(plan_passes(["A", "B"], [0], sweep, 2, "sequential", 1)) == "ABABABAB"


def test_auto_block_fills_whole_batches():
    assert auto_block_size(24, [1, 8]) == 8
    assert auto_block_size(24, [1, 1]) == 2
    assert auto_block_size(100, [2, 3]) == 12
    assert auto_block_size(5, [64]) == 5
    assert rotated(["A", "B", "C"], 4) == ["B", "C", "A"]


def _cfg(tmp_path, order, limit=16, repeats=1, **extra):
    arms = extra.pop("arms", "{a: {engine: hf, batch_size: 1}, b: {engine: hf, batch_size: 1}}")
    arrival, slo = extra.pop("arrival", "{kind: offline}"), extra.pop("slo", "{}")
    data = tmp_path / "items.jsonl"      # short questions, no gold chunks: nothing for the diagnosis to probe
    data.write_text("".join(json.dumps({"id": f"q{i}", "question": f"What is {i} + {i}?", "answers": [str(2 * i)]})
                            + "\n" for i in range(limit)))
    text = (f"name: drift\nmodel: {{id: 'random:tiny-llama', dtype: float32}}\nthreads: 1\n"
            f"workload: {{dataset: '{data}', limit: {limit}, max_new_tokens: 4, warmup: 1, order: {order}, "
            f"block_size: 2, ignore_eos: true, arrival: {arrival}}}\nrepeats: {repeats}\nslo: {slo}\n"
            f"baseline: a\narms: {arms}\n")
    path = tmp_path / f"{order}.yaml"
    path.write_text(text)
    return load_config(path, device="cpu")


def _run(tmp_path, order, **extra):
    exp = Experiment(_cfg(tmp_path, order, **extra), progress=False)
    run_dir = exp.run(tmp_path / "runs")
    records = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]
    return exp.summary, records, run_dir, exp


@pytest.fixture
def tag_arms(monkeypatch):
    """Each engine learns which arm it serves, so a patched step can treat arms differently."""
    orig = ArmPlan.new_engine

    def new_engine(self):
        engine = orig(self)
        engine.arm_name = self.name
        return engine
    monkeypatch.setattr(ArmPlan, "new_engine", new_engine)


def _growing_slowdown(monkeypatch, start: list, rate=0.05):
    """Each arm step sleeps in proportion to the time since the run's first step (clear `start` between runs)."""
    orig = HFEngine.step

    def step(self):
        if hasattr(self, "arm_name"):       # the arms' engines, not the diagnosis's probes after the run
            now = time.perf_counter()
            start.append(now)
            time.sleep(0.002 + rate * (now - start[0]))     # the machine gets slower as the run goes on
        return orig(self)
    monkeypatch.setattr(HFEngine, "step", step)


def test_growing_drift_biases_sequential_but_not_interleaved(tmp_path, monkeypatch, tag_arms):
    start: list[float] = []
    _growing_slowdown(monkeypatch, start)
    seq, seq_recs, _, _ = _run(tmp_path, "sequential")
    start.clear()
    inter, inter_recs, run_dir, _ = _run(tmp_path, "interleaved")
    s, i = seq["arms"]["b"], inter["arms"]["b"]
    assert s["output_throughput_vs_baseline"] < 0.7            # identical arms, yet b "loses": it ran later
    assert s["output_throughput_block_ratio_ci_high"] < 1.0
    assert i["output_throughput_block_ratio_ci_low"] <= 1.0 <= i["output_throughput_block_ratio_ci_high"]
    assert 0.85 < i["output_throughput_vs_baseline"] < 1.15
    assert inter["drift"]["moved"] < -0.2 and inter["drift"]["warning"]     # the machine moved, and the report says so
    assert inter["order"]["order"] == "interleaved" and seq["order"]["order"] == "sequential"
    outputs = lambda recs: {(r["arm"], r["request_id"]): r["output_ids"] for r in recs}   # noqa: E731
    assert outputs(seq_recs) == outputs(inter_recs)             # same tokens whichever order
    assert all(r["match_baseline"] for r in inter_recs if r["arm"] == "b")    # rotated blocks matched after the run
    report = (run_dir / "report.md").read_text()
    assert "Order: **interleaved**" in report and "**Warning**: Baseline drift" in report


def test_real_2x_difference_is_still_measured_as_2x(tmp_path, monkeypatch, tag_arms):
    orig = HFEngine.step

    def step(self):
        t = time.perf_counter()
        out = orig(self)
        work = time.perf_counter() - t
        # a: work + 60 ms; b: twice that, so b's steps take exactly twice a's (the delay dwarfs the time spent
        # outside steps, which both arms pay once and which grows on a loaded machine)
        time.sleep(0.06 if getattr(self, "arm_name", "a") == "a" else work + 0.12)
        return out
    monkeypatch.setattr(HFEngine, "step", step)
    built, new_engine = [], ArmPlan.new_engine
    monkeypatch.setattr(ArmPlan, "new_engine", lambda plan: built.append((plan.name, e := new_engine(plan))) or e)
    summary, _, _, exp = _run(tmp_path, "interleaved")
    assert [e for n, e in built if n == "b"][-1].batches == 16  # one engine ran the pass's 8 blocks: stats cover it
    assert not exp._live                    # each engine is let go after its last pass
    b = summary["arms"]["b"]
    # about 0.5; the band allows for the forward itself taking longer in b's steps on a busy or idle machine (a fresh
    # CI clone measured 0.42), while a 1x or 4x reading still fails
    assert 0.35 < b["output_throughput_vs_baseline"] < 0.65
    assert 0.35 < b["output_throughput_block_ratio"] < 0.65
    assert b["output_throughput_block_ratio_ci_high"] < 0.8      # clearly not 1, under a shared machine's noise


def test_arms_that_cannot_coexist_stop_before_the_run(tmp_path, monkeypatch):
    arms = ("{a: {engine: paged, kv_budget_tokens: 4096, block_size: 16}, "
            "b: {engine: paged, kv_budget_tokens: 4096, block_size: 16}}")
    cfg = _cfg(tmp_path, "interleaved", limit=2, arms=arms)
    one_pool = 4096 * footprint.kv_bytes_per_token(load_model(cfg.arm_model("a"), "cpu"))
    monkeypatch.setattr(footprint, "available_bytes", lambda device: int(1.5 * one_pool))
    with pytest.raises(UserError) as err:
        Experiment(cfg, progress=False)
    msg = str(err.value)
    assert "workload.order: interleaved" in msg and "a (weights" in msg and "b (weights" in msg
    assert "workload.order: sequential" in msg
    live, most = set(), [0]        # sequential holds one pool at a time, across repeats too
    orig_init, orig_close = PagedEngine.__init__, PagedEngine.close

    def init(self, *a, **k):
        orig_init(self, *a, **k)
        live.add(id(self))
        most[0] = max(most[0], len(live))

    def close(self):
        live.discard(id(self))
        orig_close(self)
    monkeypatch.setattr(PagedEngine, "__init__", init)
    monkeypatch.setattr(PagedEngine, "close", close)
    seq = Experiment(_cfg(tmp_path, "sequential", limit=2, repeats=2, arms=arms), progress=False)
    assert [p.arm for p in seq.passes] == ["a", "b", "a", "b"]
    seq.run(tmp_path / "runs")
    assert most[0] == 1 and not live


def test_one_block_is_not_reported_as_alternating():
    text = order_info("interleaved", OFFLINE, 24, 24, 1)["text"]
    assert "ran one after the other" in text and "alternate block by block" not in text
    assert "rotated per repeat" in order_info("interleaved", OFFLINE, 24, 24, 2)["text"]
    assert "alternate block by block" in order_info("interleaved", OFFLINE, 8, 24, 1)["text"]


@pytest.mark.parametrize("order", ["interleaved", "sequential"])
def test_slo_search_rotates_arms_per_repeat_and_sequential_holds_one_engine(tmp_path, monkeypatch, order):
    held = []      # after each measured rate: (arm, repeat, the arms whose engine is loaded)
    orig = Experiment._run_arm

    def run_arm(self, name, repeat, *args):
        orig(self, name, repeat, *args)
        held.append((name, repeat, {a for a, p in self.plans.items() if p._engine is not None}))
    monkeypatch.setattr(Experiment, "_run_arm", run_arm)
    summary, *_ = _run(tmp_path, order, limit=2, repeats=2, arrival="{kind: slo_search, rates: [2, 50], steps: 1}",
                       slo="{ttft_ms: 60000}")
    assert ("lockstep" in summary["order"]["text"]) == (order == "interleaved")
    assert [s["repeat"] for s in summary["capacity"]["a"]["searches"]] == [0, 1]
    firsts = [next(a for a, r, _ in held if r == rep) for rep in (0, 1)]
    assert firsts == (["a", "b"] if order == "interleaved" else ["a", "a"])
    if order == "sequential":
        assert all(engines == {arm} for arm, _, engines in held)
    else:       # interleaved keeps every engine it has started, as offline blocks do
        assert any(len(engines) == 2 for _, _, engines in held)


@pytest.mark.parametrize("order", ["interleaved", "sequential"])
def test_slo_searches_run_in_lockstep_when_interleaved(tmp_path, monkeypatch, order):
    probes = []     # (arm, repeat, rate) in the order measured

    def met_below_10(records, slo):      # every search probes 50 and 10 (missed), then 4.47 (met): 3 probes
        probes.append((records[0]["arm"], records[0]["repeat"], float(records[0]["rate"])))
        return 1.0 if probes[-1][2] < 10 else 0.0
    monkeypatch.setattr(runner_module, "attainment", met_below_10)
    summary, *_ = _run(tmp_path, order, limit=1, repeats=2, arrival="{kind: slo_search, rates: [2, 50], steps: 2}",
                       slo="{ttft_ms: 60000}")
    searches = [(a, r) for a, r, _ in probes]
    if order == "interleaved":      # one probe of each search per round, the order rotated per round and repeat
        assert searches == [("a", 0), ("b", 0), ("b", 1), ("a", 1), ("b", 0), ("a", 0), ("a", 1), ("b", 1)] + \
            [("a", 0), ("b", 0), ("b", 1), ("a", 1)]
    else:                           # one search to its end, then the next
        assert searches == [("a", 0)] * 3 + [("b", 0)] * 3 + [("a", 1)] * 3 + [("b", 1)] * 3
    assert summary["capacity"]["b"]["max_rate_per_repeat"] == [pytest.approx(math.sqrt(20))] * 2


# counters an engine derives from its own requests alone: any state shared between arms would move them with the order
STATE_KEYS = ("prefix_cache_hit_rate", "kv_peak_blocks", "preemptions", "spec_acceptance_rate",
              "spec_mean_accepted_tokens", "quality_exact_match", "quality_token_f1", "n_ok")


def test_outputs_scores_and_engine_state_do_not_depend_on_the_order(tmp_path):
    paged = "engine: paged, kv_budget_tokens: 1024, block_size: 16, max_num_seqs: 2"
    arms = (f"{{a: {{engine: hf, batch_size: 2}}, p: {{{paged}}}, "
            f"s: {{{paged}, speculative: {{method: prompt_lookup, ngram: 2, num_draft_tokens: 3}}}}}}")
    runs = {}
    for o in ("sequential", "interleaved"):
        (tmp_path / o).mkdir()
        runs[o] = _run(tmp_path / o, o, arms=arms)
    (seq, seq_recs, seq_dir, _), (inter, inter_recs, inter_dir, _) = runs["sequential"], runs["interleaved"]
    for name in ("report.md", "report.html"):      # how each arm's peak memory was taken, in this run's order
        text = (inter_dir / name).read_text()     # (the HTML escapes apostrophes)
        assert "alternated (interleaved)" in text and "highest of up to 8 passes" in text
        assert "passes (8 at most) ran back to back" in (seq_dir / name).read_text()
    assert inter["order"]["n_blocks"] == 8 and "alternate block by block" in inter["order"]["text"]
    outputs = lambda recs: {(r["arm"], r["request_id"]): r["output_ids"] for r in recs}   # noqa: E731
    assert outputs(seq_recs) == outputs(inter_recs) and len(outputs(seq_recs)) == 48
    for arm in ("a", "p", "s"):
        for key in STATE_KEYS:
            assert seq["arms"][arm].get(key) == inter["arms"][arm].get(key), (arm, key)
    assert seq["arms"]["p"]["prefix_cache_hit_rate"] > 0       # the counter is live: the prompts share a template
    assert "spec_acceptance_rate" in seq["arms"]["s"]
    matched = lambda recs: {(r["arm"], r["request_id"]): r.get("match_baseline") for r in recs}   # noqa: E731
    assert matched(seq_recs) == matched(inter_recs)


def test_a_default_paged_pool_counts_as_held(tmp_path):
    cfg = _cfg(tmp_path, "sequential", limit=2, arms="{a: {engine: hf, batch_size: 1}, b: {engine: paged}}")
    exp = Experiment(cfg, progress=False)
    per_token = footprint.kv_bytes_per_token(exp.plans["b"].lm)
    assert footprint.kv_estimate(exp.plans["b"], exp.items, "cpu") == (16384 * per_token, True)   # PagedOptions' default
    held, fixed = footprint.kv_estimate(exp.plans["a"], exp.items, "cpu")
    assert not fixed and 0 < held < 1024 * per_token       # batch 1 x (prompt + 4 new tokens), only while it runs


def test_sequential_drift_line_says_what_the_check_cannot_see():
    drift = {"moved": 0.01, "baseline_first": 100.0, "baseline_last": 101.0, "blocks_compared": 2,
             "ci_half_width": 0.05, "warning": False}
    row = {"output_throughput_block_ratio": 0.5, "n_blocks_paired": 6}
    summary = {"baseline": "a", "arms": {"a": {}, "b": row}, "drift": drift,
               "order": {"order": "sequential", "text": "Order: **sequential**."}}
    assert "would not show here" in "\n".join(drift_section(summary))
    summary["order"] = {"order": "interleaved", "text": "Order: **interleaved**."}
    assert "would not show here" not in "\n".join(drift_section(summary))


def _plan(engine: str, lm, **options):
    from types import SimpleNamespace
    from testbed.engines import ENGINES
    return SimpleNamespace(lm=lm, arm=SimpleNamespace(engine=engine, options=ENGINES.get(engine).Options(**options),
                                                      sections={}))


def test_two_in_process_vllm_arms_cannot_be_interleaved(tiny_lm):
    plans = {"v1": _plan("vllm", tiny_lm), "v2": _plan("vllm", tiny_lm), "hf": _plan("hf", tiny_lm)}
    with pytest.raises(UserError) as err:
        footprint.check_exclusive(plans)
    assert "v1, v2" in err.value.message and "sequential" in err.value.fix and "multiprocessing" in err.value.fix
    plans["v2"] = _plan("vllm", tiny_lm, multiprocessing=True)     # its own processes: they can coexist
    footprint.check_exclusive(plans)


def test_private_weight_copies_count_once_per_copy(tiny_lm):
    plans = {"p1": _plan("paged", tiny_lm), "p2": _plan("paged", tiny_lm), "v": _plan("vllm", tiny_lm),
             "hf": _plan("hf", tiny_lm), "p3": _plan("paged", tiny_lm, prepacked_linear=False)}
    own = footprint.own_memory(plans, "cpu")
    linear = sum(m.weight.numel() * 4 for m in tiny_lm.model.modules() if isinstance(m, torch.nn.Linear))
    assert own == {"p1": linear, "p2": 0, "v": tiny_lm.weight_bytes, "hf": 0, "p3": 0}   # the packed copy is shared


def test_drift_across_offered_rates_compares_blocks_at_the_same_rate():
    from types import SimpleNamespace

    from testbed.metrics.drift import baseline_drift

    def run(rate, started, tok_s):      # one block of 10 output tokens taking 10/tok_s seconds
        return SimpleNamespace(repeat=0, rate=rate, block=started, started=started, wall_s=10 / tok_s,
                               records=[{"status": "ok", "output_tokens": 10}])
    # a sweep's two repeats: fast passes at high rates, slow ones at low rates; the machine never moved
    steady = [run(8, 0, 40), run(1.4, 1, 20), run(0.5, 2, 8), run(8, 3, 40), run(1.4, 4, 20), run(0.5, 5, 8),
              run(0.7, 6, 11)]
    d = baseline_drift(steady)
    assert d["per_rate"] and d["moved"] == pytest.approx(0) and d["baseline_blocks"] == 6   # 0.7 ran once: left out
    slowing = [run(8, 0, 40), run(1.4, 1, 20), run(8, 2, 30), run(1.4, 3, 15)]            # 25% slower at both rates
    assert baseline_drift(slowing)["moved"] == pytest.approx(-0.25)
    text = drift_section({"baseline": "a", "arms": {"a": {}}, "drift": {**d, "ci_half_width": 0.1, "warning": False},
                          "order": {"order": "interleaved", "text": "Order: **interleaved**."}})
    assert "first pass against last, over the pair's mean; 3 rates): 1.00 first, 1.00 last (+0.0%)" in "\n".join(text)
