"""Bad values in a config, its --set overrides and `fetch`'s argument: one error line naming the field (as a
config path) or the argument, one fix line, exit 2, never a traceback."""
import pytest

from testbed.cli import main

BASE = """name: t
model: {id: random:tiny-llama}
workload: {dataset: golden, limit: 2, max_new_tokens: 2}
baseline: a
"""


def one_error(capsys, code) -> str:
    """The error, checked: exit 2, no traceback, `error: ...` (plus one line naming the field, for a schema
    error) and `  fix: ...`."""
    assert code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) in (2, 3), lines
    assert lines[0].startswith("error: ") and lines[-1].startswith("  fix: "), lines
    return "\n".join(lines)


def refused(tmp_path, capsys, text: str, *args: str) -> str:
    """`validate` on BASE + text (+ args): the error and its fix, checked to be one line each."""
    path = tmp_path / "c.yaml"
    path.write_text(BASE + text)
    return one_error(capsys, main(["validate", str(path), "--device", "cpu", *args]))


@pytest.mark.parametrize("key,what", [("on", "a boolean"), ("1", "a number"), ("null", "null"),
                                      ("2024-01-01", "a date"), ("~", "null")])
def test_a_key_yaml_reads_as_no_name_is_refused_as_written(tmp_path, capsys, key, what):
    # `on:` became the key True and surfaced as "arms.True.[key]: Input should be a valid string"
    err = refused(tmp_path, capsys, f"arms:\n  a: {{engine: hf}}\n  {key}: {{engine: hf}}\n")
    assert f"line 7: the key `{key}` reads as {what}" in err and f"quote the key: '{key}'" in err


def test_a_key_reading_as_a_date_inside_extra_body_names_its_line(tmp_path, capsys):
    err = refused(tmp_path, capsys, "arms:\n  a:\n    engine: openai\n    extra_body:\n      2024-01-01: x\n")
    assert "line 9: the key `2024-01-01` reads as a date" in err


def test_a_key_reading_as_a_number_in_a_set_value_names_the_override(tmp_path, capsys):
    err = refused(tmp_path, capsys, "arms: {a: {engine: openai}}\n", "--set", "arms.a.extra_body={1: x}")
    assert "--set arms.a.extra_body: line 1: the key `1` reads as a number" in err


def test_quoted_keys_that_look_like_values_still_load(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(BASE + "arms: {a: {engine: hf}, 'on': {engine: hf}, '2024-01-01': {engine: hf}}\n")
    assert main(["validate", str(path), "--device", "cpu"]) == 0


@pytest.mark.parametrize("arm,field", [
    ("{engine: openai, timeout_s: .inf}", "arms.a.timeout_s"),
    ("{engine: openai, request_timeout_s: .inf}", "arms.a.request_timeout_s"),
    ("{engine: paged, watermark: .nan}", "arms.a.watermark"),
])
def test_engine_options_refuse_nan_and_infinity(tmp_path, capsys, arm, field):
    # `timeout_s: .inf` passed its gt=0 bound: a stalled stream was never cut
    assert f"{field}: Input should be a finite number" in refused(tmp_path, capsys, f"arms: {{a: {arm}}}\n")


@pytest.mark.parametrize("body,field,says", [
    ("{t: .nan}", "arms.a.extra_body.t", "nan is not a JSON number"),
    ("{a: {b: [1, -.inf]}}", "arms.a.extra_body.a.b.1", "-inf is not a JSON number"),
    ("{since: 2024-01-01}", "arms.a.extra_body.since", "quote it: '2024-01-01'"),
    ("{x: [{at: 2024-01-01 10:00:00}]}", "arms.a.extra_body.x.0.at", "as a date"),
    ("{x: !!binary aGVsbG8=}", "arms.a.extra_body.x", "not a JSON value"),
])
def test_extra_body_refuses_what_json_cannot_carry_at_load(tmp_path, capsys, body, field, says):
    # a NaN went out as the invalid JSON token NaN; a YAML date failed every request of the run
    err = refused(tmp_path, capsys, f"arms: {{a: {{engine: openai, extra_body: {body}}}}}\n")
    assert f"{field}: " in err and says in err


def test_extra_body_of_json_values_still_loads(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(BASE + "arms: {a: {engine: openai, extra_body: {a: 1, b: [x, 2.5, null, true, {c: d}]}}}\n")
    assert main(["validate", str(path), "--device", "cpu"]) == 0


@pytest.mark.parametrize("text,args,says", [
    ("sampling: {temperature: 1e-9}\narms: {a: {}}\n", (), "sampling.temperature: Input should be a valid number "
                                                           "(got '1e-9'); YAML reads 1e-9 as text: write 1.0e-9"),
    ("arms: {a: {engine: openai, timeout_s: 5E1}}\n", (), "arms.a.timeout_s: Input should be a valid number "
                                                          "(got '5E1'); YAML reads 5E1 as text: write 5.0e+1"),
    ("arms: {a: {}}\n", ("--set", "workload.duration_s=1.5e3"), "write 1.5e+3"),
    ("arms: {a: {}}\n", ("--set", "workload.max_new_tokens=1e3"), "workload.max_new_tokens: Input should be a valid "
                                                                  "integer (got '1e3'); YAML reads 1e3 as text: write 1000"),
])
def test_a_number_yaml_reads_as_text_says_how_to_write_it(tmp_path, capsys, text, args, says):
    # YAML 1.1 wants a dot in the mantissa and a sign in the exponent; `1e-9` is the string '1e-9'
    assert says in refused(tmp_path, capsys, text, *args)


@pytest.mark.parametrize("model,says", [
    ("", "fetch MODEL: the model name is empty"),          # was "model.id: . has no config.json"
    ("  ", "fetch MODEL: the model name is empty"),
    ("random:nope", "fetch MODEL: 'random:nope' is not a random preset"),   # was a hub repo-id error
    ("foo bar", "fetch MODEL: could not fetch 'foo bar' from the hub"),
])
def test_fetch_of_no_model_name_lists_what_to_give(capsys, monkeypatch, model, says):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    err = one_error(capsys, main(["fetch", model]))
    assert says in err and "smollm2-135m" in err and "random:<tiny-llama|" in err and "hub id (org/name)" in err


@pytest.mark.parametrize("model,says", [("./nope", "fetch MODEL: ./nope does not exist"),
                                        ("nope.gguf", "fetch MODEL: GGUF file nope.gguf not found")])
def test_fetch_of_a_missing_path_names_the_argument_not_a_config_field(tmp_path, capsys, monkeypatch, model, says):
    monkeypatch.chdir(tmp_path)
    err = one_error(capsys, main(["fetch", model]))
    assert says in err and "model.id" not in err


def test_fetch_of_a_random_preset_has_nothing_to_fetch(capsys):
    assert main(["fetch", "random:tiny-llama"]) == 0
    assert "nothing to fetch" in capsys.readouterr().err


@pytest.mark.parametrize("arrival,says", [
    ("{kind: poisson, rate: 1.0e-6}", "workload.arrival.rate: 1e-06 requests/s is one request every 11.6 days"),
    ("{kind: sweep, rates: [1, 1.0e-6, inf]}", "workload.arrival.rates: 1e-06 requests/s is one request every"),
    ("{kind: slo_search, rates: [1.0e-6, 4]}", "workload.arrival.rates: 1e-06 requests/s"),
])
def test_a_rate_whose_mean_gap_exceeds_a_day_is_refused_at_load(tmp_path, capsys, arrival, says):
    # 1e-6 (a typo for 1e6) passed, and the run slept for days between requests
    err = refused(tmp_path, capsys, "slo: {ttft_ms: 500}\narms: {a: {}}\n", "--set", f"workload.arrival={arrival}")
    assert says in err and "1-day bound" in err


@pytest.mark.parametrize("arrival", ["{kind: poisson, rate: 0.0002}", "{kind: sweep, rates: [0.0001, 1, inf]}"])
def test_a_pass_that_takes_over_a_day_to_send_its_requests_is_refused(tmp_path, capsys, arrival):
    # each rate alone is under a day per request, but 20 requests at it are not
    err = refused(tmp_path, capsys, "arms: {a: {}}\n", "--set", "workload.limit=20",
                  "--set", f"workload.arrival={arrival}")
    assert "workload.arrival.rate" in err and "20 requests at 0.000" in err and "workload.duration_s" in err


def test_a_duration_ending_before_the_first_expected_request_is_refused(tmp_path, capsys):
    err = refused(tmp_path, capsys, "arms: {a: {}}\n", "--set", "workload.arrival={kind: poisson, rate: 0.001}",
                  "--set", "workload.duration_s=60")
    assert "workload: duration_s 60 ends before the first request is expected" in err and "arrival.rate" in err


def test_a_duration_beyond_a_week_is_refused(tmp_path, capsys):
    err = refused(tmp_path, capsys, "arms: {a: {}}\n", "--set", "workload.duration_s=1.0e+12")
    assert "workload.duration_s: 1e+12 s is" in err and "7-day bound" in err


@pytest.mark.parametrize("args", [("--set", "workload.arrival={kind: poisson, rate: .inf}"),
                                  ("--set", "workload.arrival={kind: sweep, rates: [1, inf]}", "--set",
                                   "workload.duration_s=604800"),
                                  ("--set", "workload.limit=20", "--set", "workload.arrival={kind: poisson, "
                                   "rate: 0.0002}", "--set", "workload.duration_s=6000")])
def test_all_at_once_and_long_schedules_cut_by_a_duration_still_load(tmp_path, capsys, args):
    path = tmp_path / "c.yaml"
    path.write_text(BASE + "arms: {a: {}}\n")
    assert main(["validate", str(path), "--device", "cpu", *args]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("model_id", ['""', '"  "'])
def test_an_empty_model_id_is_refused_not_read_as_the_working_directory(tmp_path, capsys, model_id):
    """It used to read `model.id: . has no config.json`, as if a directory had been given."""
    err = refused(tmp_path, capsys, "arms: {a: {}}\n", "--set", f"model.id={model_id}")
    assert "model.id: an empty model id; give an alias" in err and "config.json" not in err
