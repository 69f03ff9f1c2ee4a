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
    assert code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 2, lines
    assert lines[0].startswith("error: ") and lines[1].startswith("  fix: "), lines
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
