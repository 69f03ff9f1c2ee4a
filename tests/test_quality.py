"""Quality scorers against hand-worked cases (SQuAD normalisation, token F1, containment, JSON)."""
import pytest

from testbed.errors import UserError
from testbed.metrics.quality import (SCORERS, contains, exact_match, extract_json_object, normalize_answer,
                                     score_output, token_f1)
from testbed.workloads.items import Item

SCHEMA = {"type": "object", "required": ["party", "amount"],
          "properties": {"party": {"type": "string"}, "amount": {"type": "number"}}}


def item(answers, scorer="contains", schema=None):
    return Item(id="q1", category="test", question="?", answers=answers, scorer=scorer, schema=schema)


def test_normalisation_is_squads():
    assert normalize_answer("The  Quick, brown FOX!") == "quick brown fox"
    assert normalize_answer("an apple a day") == "apple day"
    assert normalize_answer("theatre") == "theatre"          # articles only as whole words


def test_exact_match():
    assert exact_match("The Eiffel Tower.", "eiffel tower") == 1.0
    assert exact_match("Eiffel Tower in Paris", "eiffel tower") == 0.0


def test_token_f1_hand_computed():
    # pred tokens: [paris, france], ref: [paris]: precision 1/2, recall 1 -> F1 2/3
    assert token_f1("Paris, France", "Paris") == pytest.approx(2 / 3)
    assert token_f1("London", "Paris") == 0.0
    assert token_f1("", "") == 1.0
    assert token_f1("the", "Paris") == 0.0                   # normalises to empty


def test_contains_matches_whole_tokens():
    assert contains("It was signed on 12 March 2021.", "12 march 2021") == 1.0
    assert contains("The fee is 10 dollars", "1") == 0.0
    assert contains("anything", "the") == 0.0                # empty normalised reference never matches


def test_score_output_f1_takes_best_reference():
    out = score_output(item(["New York City", "NYC"], scorer="f1"), "nyc")
    assert out["scores"]["f1"] == 1.0 and out["score"] == 1.0 and out["correct"]
    assert set(out["scores"]) == {"exact", "f1", "contains"}


def test_correct_rules_per_scorer():
    assert score_output(item(["Paris"], "exact"), "Paris.")["correct"]
    assert not score_output(item(["Paris"], "exact"), "It is Paris")["correct"]
    assert score_output(item(["Paris"], "contains"), "It is Paris")["correct"]
    half = score_output(item(["red green blue yellow"], "f1"), "red green")   # P=1, R=.5 -> F1 2/3
    assert half["score"] == pytest.approx(2 / 3) and half["correct"]
    low = score_output(item(["red green blue yellow"], "f1"), "red purple orange")  # P=1/3, R=1/4 -> 2/7
    assert low["score"] == pytest.approx(2 / 7) and not low["correct"]


def test_json_in_fences_valid_and_all_fields():
    text = 'Here you go:\n```json\n{"party": "ACME Corp.", "amount": 1200}\n```'
    out = score_output(item(['{"party": "acme corp", "amount": 1200.0}'], "json", SCHEMA), text)
    assert out["scores"]["json_valid"] == 1.0 and out["scores"]["json_fields"] == 1.0
    assert out["score"] == 1.0 and out["correct"]


def test_json_partial_fields_and_extra_fields():
    text = '{"party": "Globex", "amount": 1200, "note": "extra"}'
    out = score_output(item(['{"party": "ACME", "amount": 1200}'], "json", SCHEMA), text)
    assert out["scores"]["json_valid"] == 1.0                  # extra fields allowed by this schema
    assert out["scores"]["json_fields"] == 0.5 and not out["correct"]


def test_json_extra_field_rejected_by_strict_schema():
    strict = {**SCHEMA, "additionalProperties": False}
    out = score_output(item(['{"party": "ACME", "amount": 5}'], "json", strict), '{"party": "ACME", "amount": 5, "x": 1}')
    assert out["scores"]["json_valid"] == 0.0 and out["scores"]["json_fields"] == 1.0 and not out["correct"]


def test_json_schema_violation_and_invalid_json():
    bad_type = score_output(item(['{"party": "A", "amount": 5}'], "json", SCHEMA), '{"party": "A", "amount": "five"}')
    assert bad_type["scores"]["json_valid"] == 0.0 and not bad_type["correct"]
    broken = score_output(item(['{"party": "A", "amount": 5}'], "json", SCHEMA), '{"party": "A", amount: 5')
    assert broken["scores"] == {**broken["scores"], "json_valid": 0.0, "json_fields": 0.0}
    assert broken["score"] == 0.0 and not broken["correct"]


def test_extract_first_object_skips_non_json_braces():
    assert extract_json_object('use {braces} then {"a": 1} and {"b": 2}') == {"a": 1}
    assert extract_json_object("[1, 2]") is None
    assert extract_json_object("no json") is None


def test_unknown_scorer_is_a_user_error():
    with pytest.raises(UserError, match="unknown scorer"):
        score_output(item(["x"], "bleu"), "x")
    assert {"exact", "f1", "contains", "json"} <= set(SCORERS.names())
