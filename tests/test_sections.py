"""A new arm section plugs in through testbed.sections alone: no edit to config, arm or runner.

The `prefix` section below prepends a system prompt to every request and notes it in the records.
"""
import json

import pytest

from testbed.config import validate
from testbed.errors import UserError
from testbed.runner import Experiment
from testbed.sections import SECTIONS, Section


@SECTIONS.register("prefix")
class Prefix(Section):
    """`prefix: {text: ...}` — a system message before the workload's own messages."""
    text: str

    def messages(self, messages: list[dict]) -> list[dict]:
        return [{"role": "system", "content": self.text + "\n" + messages[0]["content"]}] + messages[1:]

    def record_fields(self, req) -> dict:
        return {"prefix": self.text}

    def aggregate(self, records: list[dict]) -> dict[str, float]:
        return {"prefix_records": float(sum(r.get("prefix") == self.text for r in records))}


@SECTIONS.register("turbo")
class Turbo(Section):
    """An engine-level section no engine honours."""
    engine_level = True


def config(**arm) -> dict:
    return {"name": "prefix", "model": {"id": "random:tiny-llama", "dtype": "float32"}, "threads": 1,
            "workload": {"dataset": "golden/lookup", "limit": 2, "max_new_tokens": 4, "warmup": 0},
            "baseline": "plain", "arms": {"plain": {"engine": "hf"}, "prefixed": {"engine": "hf", **arm}}}


def test_a_new_section_validates_runs_and_reports(tmp_path):
    cfg = validate(config(prefix={"text": "Answer like a pirate."}))
    assert isinstance(cfg.arms["prefixed"].sections["prefix"], Prefix)
    exp = Experiment(cfg, progress=False)
    run_dir = exp.run(tmp_path)
    records = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]
    by_arm = {arm: {r["item_id"]: r for r in records if r["arm"] == arm} for arm in ("plain", "prefixed")}
    assert by_arm["plain"].keys() == by_arm["prefixed"].keys() and len(by_arm["plain"]) == 2
    for item, rec in by_arm["prefixed"].items():
        assert rec["prefix"] == "Answer like a pirate."
        assert rec["prompt_tokens"] > by_arm["plain"][item]["prompt_tokens"]     # the prefix reached the model
        assert "prefix" not in by_arm["plain"][item]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["arms"]["prefixed"]["prefix_records"] == 2.0
    assert "prefix_records" not in summary["arms"]["plain"]
    req = exp.plans["prefixed"].make_request(exp.items[0], 0.0)
    assert req.messages[0]["content"].startswith("Answer like a pirate.\n")


def test_a_new_section_is_validated_by_its_own_class():
    with pytest.raises(UserError) as e:
        validate(config(prefix={"txt": "x"}))
    assert "arms.prefixed.prefix.txt: unknown key (did you mean 'text'?)" in e.value.message


def test_an_engine_level_section_runs_only_where_an_engine_honours_it():
    with pytest.raises(UserError) as e:
        validate(config(turbo={}))
    assert "arms.prefixed.turbo: engine 'hf' does not honour a turbo section" in e.value.message
    validate(config(prefix={"text": "x"}, engine="openai", base_url="http://127.0.0.1:1/v1"))   # around the engine: any
