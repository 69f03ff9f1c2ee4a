"""Temporal validity: does a chunk state a fact as it was in a dated past, when the question asks about now?

    asks_about_now("How many stores does Marlowe Coffee operate?")                      # True
    dated_past("How many stores does ...", "At the end of 2019 Marlowe Coffee operated 198 stores.")  # True

Retrieved context often holds the history of a fact next to its current value: an archived
contract "(2017, superseded in 2022)", "From 2012 until 2019 the chief executive was ...", "In 2018
the company employed ...". Lexical and small-LM relevance score these at least as high as the
current statement (same names, same wording), and a small model then answers with the old value.
A retriever with document dates would filter them; without dates the text carries the signal.

The rule, deliberately narrow: a chunk is *dated past* when it names a year (1900-2099) and either
marks a bounded or ended period (was, were, had, until, before, superseded, formerly, ...) or
puts one of the question's own verbs in the past tense ("operate" -> "operated"). It applies only
to a question that is itself about now: no year, no past auxiliary ("Who was the CEO in 2015?"
keeps dated chunks). A current statement that mentions a year ("agreement (2022), clause 4 ...")
is not flagged, since it names no ended period.
"""
import re
from functools import lru_cache

from testbed.context.text import words

YEAR = re.compile(r"\b(?:19|20)\d\d\b")
PAST_MARKERS = frozenset({"was", "were", "had", "did", "until", "before", "superseded", "formerly",
                          "former", "previously", "archived"})
PAST_QUESTION = frozenset({"was", "were", "did", "had", "former", "formerly", "previously", "used"})


@lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
    return frozenset(ENGLISH_STOP_WORDS)


def asks_about_now(question: str) -> bool:
    """A question with no year and no past auxiliary asks for the current value."""
    return not YEAR.search(question) and not set(words(question)) & PAST_QUESTION


def dated_past(question: str, text: str) -> bool:
    """Whether `text` scopes its statement to a dated past period (see the module docstring)."""
    if not YEAR.search(text):
        return False
    ws = set(words(text))
    if ws & PAST_MARKERS:
        return True
    verbs = {w for w in words(question) if w not in _stop_words() and len(w) > 2}
    return any(f"{v}d" in ws or f"{v}ed" in ws for v in verbs)
