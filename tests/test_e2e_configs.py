"""Every config in configs/ runs end to end on a tiny random model and meets the result contract."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from testbed.config import load_config
from testbed.runner import Experiment
from testbed.serve.server import serving_remote_arms

ROOT = Path(__file__).resolve().parents[1]
CHECKER = ROOT.parent / "shared" / "tools" / "check_results.py"
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
TINY = ["model.id=random:tiny-llama", "workload.max_new_tokens=8", "workload.warmup=1"]
LIMIT, LIMIT_LEARNED = 3, 4      # a learned router needs two items of each label for 2-fold cross-fitting


def tiny_overrides(path: Path) -> list[str]:
    """Point every model of the config (arms', drafts', tiers') at the tiny random model."""
    cfg = load_config(path, device="cpu")
    out = list(TINY)
    for name, arm in cfg.arms.items():
        if arm.engine == "vllm":      # vLLM's CPU attention needs a head size of 32 or more (tiny-llama's is 16)
            out.append(f"arms.{name}.model={{id: 'random:small-llama', dtype: float32}}")
        elif arm.model is not None:
            out.append(f"arms.{name}.model.id=random:tiny-llama")
        spec, routing = arm.sections.get("speculative"), arm.sections.get("routing")
        if spec is not None and spec.draft is not None:      # vLLM's draft: its CPU attention's head-size limit too
            draft = "random:small-llama" if arm.engine == "vllm" else "random:tiny-llama"
            out.append(f"arms.{name}.speculative.draft.id={draft}")
        if routing is not None:     # two tiny tiers; a learned router cross-fits on 2 folds of LIMIT_LEARNED items
            tiers = "[{name: small, model: {id: 'random:tiny-llama'}, usd_per_hour: 1}, " \
                    "{name: large, model: {id: 'random:small-llama'}, usd_per_hour: 1}]"
            for at in (f"arms.{name}.routing", f"fallback.arms.{name}.routing"):
                out.append(f"{at}.tiers={tiers}")
                out += [f"{at}.router.folds=2"] if routing.router.kind == "learned" else []
    rates = cfg.workload.arrival.rates
    if rates:     # the tiny model is ~50x faster: offer 20x the rates, so the arrival waits stay short
        out.append(f"workload.arrival.rates={[r if r == 'inf' else 20 * r for r in rates]}")
    return out


def without_missing_extras(cfg):
    """Drop arms whose optional extra is not installed here (the llmlingua step: pip install -e .[llmlingua])."""
    from testbed.context.lingua import available
    if not available():
        cfg.arms = {a: arm for a, arm in cfg.arms.items() if "'llmlingua'" not in repr(arm.sections.get("context"))}
    return cfg


def alternating_labels(monkeypatch) -> None:
    """Random tiny tiers are both wrong on every item, which leaves a learned router one class to learn
    from; give it alternating "strong helps" labels so it fits, cross-fits and routes end to end."""
    from testbed.routing import learned
    monkeypatch.setattr(learned, "strong_helps", lambda table: np.arange(table.n) % 2 == 0)


def lossless(cfg, arm: str) -> bool:
    """A greedy speculative arm on the baseline's engine and model: its tokens must equal the baseline's."""
    a, base = cfg.arms[arm], cfg.arms[cfg.baseline]
    return (set(a.sections) == {"speculative"} and a.engine == base.engine == "hf" and cfg.arm_sampling(arm).temperature == 0
            and cfg.arm_model(arm).id == cfg.arm_model(cfg.baseline).id
            and a.options.batch_size == base.options.batch_size == 1)      # no padding in either


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_runs_on_tiny_model_and_meets_contract(path, tmp_path, monkeypatch):
    cfg = without_missing_extras(load_config(path, overrides=tiny_overrides(path), device="cpu"))
    learned_arms = [a for a, arm in cfg.arms.items() if getattr(arm.sections.get("routing"), "router", None)
                    and arm.sections["routing"].router.kind == "learned"]
    limit = LIMIT_LEARNED if learned_arms else LIMIT
    alternating_labels(monkeypatch)
    with serving_remote_arms(cfg):      # `openai` arms on loopback get a real `testbed serve` of the baseline
        exp = Experiment(cfg, limit=limit, progress=False)
        run_dir = exp.run(tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    ran = set(cfg.arms) - set(exp.skipped)       # vllm arms are skipped, with a line, where vllm is missing
    assert set(summary["arms"]) == ran and not summary["incomplete"]
    records = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]
    if cfg.workload.arrival.kind != "slo_search":      # a search probes as many rates as the arm needs
        assert len(records) == limit * len(ran) * len(cfg.workload.arrival.rates or [None]) * cfg.repeats
    assert all(r["status"] == "ok" and r["output_tokens"] > 0 for r in records), \
        [(r["arm"], r["error"]) for r in records if r["status"] != "ok"][:3]
    for arm in ran:
        row = summary["arms"][arm]
        assert row["n_ok"] == row["n_requests"] == sum(r["arm"] == arm for r in records)
        assert row["output_throughput"] > 0 and row["ttft_ms_p50"] > 0
        if lossless(cfg, arm):
            assert row["match_rate_vs_baseline"] == 1.0, arm
    for arm in learned_arms:         # the learned router ran: it routed by its cross-fitted scores
        assert {r["route"]["tier"] for r in records if r["arm"] == arm} <= {"small", "large"}
        assert "route_share_small" in summary["arms"][arm] and "router_threshold" in summary["arms"][arm]
    report = (run_dir / "report.md").read_text()
    assert all(f"| {arm} " in report for arm in ran)
    if not CHECKER.exists():
        pytest.skip(f"contract checker not found at {CHECKER}")
    res = subprocess.run([sys.executable, str(CHECKER), "contract", str(run_dir)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_at_least_the_quickstart_exists():
    assert (ROOT / "configs" / "quickstart.yaml") in CONFIGS


GPU_CONFIGS = sorted((ROOT / "configs" / "gpu").glob("*.yaml"))


@pytest.mark.parametrize("path", GPU_CONFIGS, ids=[p.stem for p in GPU_CONFIGS])
def test_gpu_only_configs_validate(path):
    # CI has no GPU to run them on; they must at least parse and validate, every arm included
    cfg = load_config(path)
    assert cfg.device == "cuda" and cfg.arms and cfg.baseline in cfg.arms
