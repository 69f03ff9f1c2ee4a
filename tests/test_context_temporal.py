"""Temporal validity: dated-past statements are flagged only against questions about now."""
import pytest

from testbed.context.temporal import asks_about_now, dated_past
from testbed.context.text import coverage

NOW = "Who is the chief executive of Brindle Analytics?"


@pytest.mark.parametrize("text,flag", [
    ("From 2012 until 2019 the chief executive of Brindle Analytics was Samir Haddad.", True),
    ("Halvard Logistics services agreement (2017, superseded in 2022), clause 4.", True),
    ("In 2018 Tallgrass Bio employed 2,310 people.", False),         # past verb, but not the question's verb
    ("Halvard Logistics services agreement (2022), clause 4. Either party may terminate.", False),
    ("The chief executive of Brindle Analytics was Samir Haddad.", False),   # no year: not dated
    ("Its chief executive is Maren Okafor.", False),
])
def test_dated_past(text, flag):
    assert dated_past(NOW, text) is flag


def test_the_questions_own_verb_in_the_past_tense_dates_a_chunk():
    assert dated_past("How many people does Tallgrass Bio employ?", "In 2018 Tallgrass Bio employed 2,310 people.")


@pytest.mark.parametrize("q,now", [(NOW, True), ("Who was the chief executive in 2015?", False),
                                   ("Who did Brindle Analytics hire?", False), ("What is the 2024 rent?", False)])
def test_asks_about_now(q, now):
    assert asks_about_now(q) is now


def test_coverage_is_the_share_of_question_content_words():
    cov = coverage("product warranty under the supply agreement", ["The products carry a warranty.", "A supply agreement."])
    assert list(cov) == [0.5, 0.5] and list(coverage("the of", ["x"])) == [1.0]
