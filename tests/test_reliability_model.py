"""No model-supplied code runs unless the config says `model.trust_remote_code: true`; no prompt is shown.

The model directory here is the tiny random Llama saved with save_pretrained, plus an `auto_map`
pointing at custom .py files that write a marker file when imported.
"""
import io
import json

import pytest

from testbed.cli import main
from testbed.config import ModelSpec, validate
from testbed.errors import UserError
from testbed.models import _from_pretrained, load_model, resolve_local
from testbed.runner import run_experiment

CONFIG_PY = """import pathlib
pathlib.Path({marker!r}).write_text("ran")
from transformers import LlamaConfig


class EvilConfig(LlamaConfig):
    pass
"""
MODELING_PY = """from transformers import LlamaForCausalLM
from .configuration_evil import EvilConfig


class EvilModel(LlamaForCausalLM):
    config_class = EvilConfig
"""


@pytest.fixture(scope="module")
def evil_dir(tmp_path_factory, tiny_lm):
    d = tmp_path_factory.mktemp("evil") / "model"
    tiny_lm.model.save_pretrained(d)
    tiny_lm.tokenizer.save_pretrained(d)
    marker = d.parent / "marker"
    (d / "configuration_evil.py").write_text(CONFIG_PY.format(marker=str(marker)))
    (d / "modeling_evil.py").write_text(MODELING_PY)
    cfg = json.loads((d / "config.json").read_text())
    cfg["auto_map"] = {"AutoConfig": "configuration_evil.EvilConfig", "AutoModelForCausalLM": "modeling_evil.EvilModel"}
    (d / "config.json").write_text(json.dumps(cfg))
    return d, marker


def test_validate_refuses_remote_code_in_one_line_without_a_prompt(evil_dir, tmp_path, monkeypatch, capsys):
    d, marker = evil_dir
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: evil\nmodel: {{id: {d}}}\nworkload: {{dataset: golden, limit: 1}}\n"
                   "baseline: a\narms: {a: {engine: hf}}\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n" * 10))      # a "yes" waiting on stdin is never read
    assert main(["validate", str(cfg), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("error: model.id:") and "auto_map" in err[0] and "trust_remote_code" in err[1]
    assert len(err) == 2 and not marker.exists()


def test_transformers_is_told_no_even_past_the_precheck(evil_dir, monkeypatch):
    d, marker = evil_dir
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n" * 10))
    try:
        _from_pretrained(str(d), load_model.__globals__["torch"].float32, None)
    except UserError:
        pass                  # refused: fine; loading the native class instead is fine too
    assert not marker.exists()


def test_trust_remote_code_true_is_the_only_way_the_code_runs_and_the_report_says_so(evil_dir, tmp_path):
    d, marker = evil_dir
    lm = load_model(ModelSpec(id=str(d), trust_remote_code=True), "cpu")
    assert marker.exists() and type(lm.model).__name__ == "EvilModel"
    marker.unlink()
    cfg = validate({"name": "trusted", "model": {"id": str(d), "trust_remote_code": True}, "baseline": "a",
                    "workload": {"dataset": "golden", "limit": 1, "max_new_tokens": 2}, "arms": {"a": {}}})
    run_dir, summary = run_experiment(cfg, out_dir=tmp_path, progress=False)
    assert json.loads((run_dir / "env.json").read_text())["trust_remote_code"] == [str(d)]
    assert "trust_remote_code" in (run_dir / "report.md").read_text()


@pytest.mark.parametrize("typo,alias", [("smollm2-135", "smollm2-135m"), ("qwen2.5-coder-05b", "qwen2.5-coder-0.5b")])
def test_a_near_miss_of_an_alias_is_named_without_asking_the_hub(typo, alias):
    with pytest.raises(UserError, match=f"did you mean '{alias}'"):
        resolve_local(typo)
    assert resolve_local("gpt2") is None and resolve_local("org/smollm2-135") is None    # hub ids still go there
