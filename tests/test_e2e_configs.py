"""Every config in configs/ runs end to end on a tiny random model and meets the result contract."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.config import load_config
from testbed.runner import Experiment
from testbed.serve.server import serving_remote_arms

ROOT = Path(__file__).resolve().parents[1]
CHECKER = ROOT.parent / "shared" / "tools" / "check_results.py"
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
TINY = ["model.id=random:tiny-llama", "workload.max_new_tokens=8", "workload.warmup=1"]


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
        if spec is not None and spec.draft is not None:
            out.append(f"arms.{name}.speculative.draft.id=random:tiny-llama")
        if routing is not None:     # two tiny tiers; random labels leave a learned router nothing to learn, so rules
            tiers = "[{name: small, model: {id: 'random:tiny-llama'}, usd_per_hour: 1}, " \
                    "{name: large, model: {id: 'random:small-llama'}, usd_per_hour: 1}]"
            router = "{kind: rules, categories: [lookup]}" if routing.router.kind == "learned" else None
            for at in (f"arms.{name}.routing", f"fallback.arms.{name}.routing"):
                out.append(f"{at}.tiers={tiers}")
                out += [f"{at}.router={router}"] if router else []
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


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_runs_on_tiny_model_and_meets_contract(path, tmp_path):
    cfg = without_missing_extras(load_config(path, overrides=tiny_overrides(path), device="cpu"))
    with serving_remote_arms(cfg):      # `openai` arms on loopback get a real `testbed serve` of the baseline
        exp = Experiment(cfg, limit=3, progress=False)
        run_dir = exp.run(tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    ran = set(cfg.arms) - set(exp.skipped)       # vllm arms are skipped, with a line, where vllm is missing
    assert set(summary["arms"]) == ran and not summary["incomplete"]
    lines = (run_dir / "requests.jsonl").read_text().splitlines()
    if cfg.workload.arrival.kind != "slo_search":      # a search probes as many rates as the arm needs
        assert len(lines) == 3 * len(ran) * len(cfg.workload.arrival.rates or [None])
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
