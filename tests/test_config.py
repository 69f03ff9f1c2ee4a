"""Config validation: unknown keys, wrong types, impossible values fail with the YAML path and the fix."""
import textwrap

import pytest

from testbed.config import load_config
from testbed.errors import UserError

GOOD = """
name: t
model: {id: random:tiny-llama}
fallback: {model: {id: random:tiny-qwen2}, workload: {limit: 2}}
workload: {dataset: golden, max_new_tokens: 8}
baseline: a
arms:
  a: {engine: hf, batch_size: 1}
  b: {engine: hf, batch_size: 4}
"""


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def error_of(tmp_path, text, **kw) -> str:
    with pytest.raises(UserError) as e:
        load_config(write(tmp_path, text), **kw)
    return str(e.value)


def test_good_config_loads_and_engine_options_are_typed(tmp_path):
    cfg = load_config(write(tmp_path, GOOD), cuda_available=True)
    assert cfg.arms["b"].options.batch_size == 4
    assert cfg.model.id == "random:tiny-llama" and not cfg.fallback_applied


def test_fallback_applies_without_cuda(tmp_path):
    cfg = load_config(write(tmp_path, GOOD), cuda_available=False)
    assert cfg.fallback_applied and cfg.model.id == "random:tiny-qwen2"
    assert cfg.workload.limit == 2 and cfg.workload.max_new_tokens == 8   # deep merge keeps siblings


def test_a_fallback_model_replaces_the_model_whole(tmp_path):
    # the GPU model's bfloat16 must not leak onto the CPU fallback's model (nor its revision)
    text = GOOD.replace("model: {id: random:tiny-llama}", "model: {id: random:tiny-llama, dtype: bfloat16, revision: v1}")
    cfg = load_config(write(tmp_path, text), cuda_available=False)
    assert (cfg.model.id, cfg.model.dtype, cfg.model.revision) == ("random:tiny-qwen2", "auto", None)


def test_overrides_set_nested_values(tmp_path):
    cfg = load_config(write(tmp_path, GOOD), overrides=["workload.limit=5", "arms.a.batch_size=3"],
                      cuda_available=True)
    assert cfg.workload.limit == 5 and cfg.arms["a"].options.batch_size == 3


def test_malformed_yaml_names_line(tmp_path):
    msg = error_of(tmp_path, "name: t\nmodel: {id: x\narms: [\n")
    assert "malformed YAML" in msg and "line" in msg


def test_unknown_top_level_key_suggests_fix(tmp_path):
    msg = error_of(tmp_path, GOOD + "workloads: {}\n")
    assert "workloads: unknown key" in msg and "did you mean 'workload'" in msg


def test_unknown_nested_key_named_with_path(tmp_path):
    msg = error_of(tmp_path, GOOD.replace("max_new_tokens: 8", "max_new_token: 8"))
    assert "workload.max_new_token: unknown key" in msg and "max_new_tokens" in msg


def test_unknown_engine_option_named_with_arm_path(tmp_path):
    msg = error_of(tmp_path, GOOD.replace("batch_size: 4", "batchsize: 4"))
    assert "arms.b.batchsize: unknown key" in msg and "batch_size" in msg


def test_wrong_type_and_impossible_value(tmp_path):
    assert "workload.max_new_tokens" in error_of(tmp_path, GOOD.replace("max_new_tokens: 8", "max_new_tokens: lots"))
    assert "arms.a.batch_size" in error_of(tmp_path, GOOD.replace("batch_size: 1", "batch_size: 0"))


def test_unknown_engine_lists_choices(tmp_path):
    msg = error_of(tmp_path, GOOD.replace("engine: hf, batch_size: 1", "engine: hff"))
    assert "arms.a.engine" in msg and "did you mean 'hf'" in msg


def test_baseline_must_be_an_arm(tmp_path):
    assert "baseline 'zzz' is not an arm" in error_of(tmp_path, GOOD.replace("baseline: a", "baseline: zzz"))


def test_poisson_needs_rate(tmp_path):
    msg = error_of(tmp_path, GOOD.replace("max_new_tokens: 8}", "max_new_tokens: 8, arrival: {kind: poisson}}"))
    assert "workload.arrival" in msg and "rate" in msg


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_set_wins_over_the_fallback_which_wins_over_the_file(tmp_path):
    path = write(tmp_path, GOOD)
    cfg = load_config(path, overrides=["model.id=random:small-llama", "workload.limit=7"], cuda_available=False)
    assert cfg.fallback_applied
    assert cfg.model.id == "random:small-llama" and cfg.workload.limit == 7    # typed by the user
    assert cfg.workload.max_new_tokens == 8                                   # from the file, untouched
    cfg = load_config(path, overrides=["workload.max_new_tokens=5"], cuda_available=False)
    assert cfg.model.id == "random:tiny-qwen2" and cfg.workload.limit == 2     # fallback still applies elsewhere


def test_set_can_edit_the_fallback_and_device_decides_it(tmp_path):
    path = write(tmp_path, GOOD)
    cfg = load_config(path, overrides=["fallback.workload.limit=3"], cuda_available=False)
    assert cfg.workload.limit == 3
    cfg = load_config(path, overrides=["device=cpu"], cuda_available=True)
    assert cfg.fallback_applied and cfg.model.id == "random:tiny-qwen2"
    assert not load_config(path, device="cuda", cuda_available=False).fallback_applied


def test_sweep_rates_are_sorted_deduplicated_and_inf_kept(tmp_path):
    text = GOOD.replace("max_new_tokens: 8}", "max_new_tokens: 8, arrival: {kind: sweep, rates: [4, inf, 1, 4]}}")
    cfg = load_config(write(tmp_path, text), cuda_available=True)
    assert cfg.workload.arrival.rates == [1.0, 4.0, "inf"]
    cfg = load_config(write(tmp_path, GOOD), overrides=["workload.arrival={kind: sweep, rates: [2, .inf]}"],
                      cuda_available=True)
    assert cfg.workload.arrival.rates == [2.0, "inf"]


@pytest.mark.parametrize("arrival, expect", [
    ("{kind: sweep}", "needs rates"),
    ("{kind: sweep, rates: []}", "needs rates"),
    ("{kind: sweep, rates: [1, 0]}", "positive"),
    ("{kind: sweep, rates: [fast]}", "positive"),
    ("{kind: sweep, rates: 2}", "must be a list"),
    ("{kind: sweep, rate: 2, rates: [1]}", "not rate"),
    ("{kind: poisson, rate: 2, rates: [1]}", "rates is for kind sweep"),
])
def test_bad_sweeps_name_the_field_and_the_fix(tmp_path, arrival, expect):
    msg = error_of(tmp_path, GOOD.replace("max_new_tokens: 8}", f"max_new_tokens: 8, arrival: {arrival}}}"))
    assert "workload.arrival" in msg and expect in msg
    assert "e.g." in msg or "drop" in msg
