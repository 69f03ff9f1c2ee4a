"""Cheap request features for the rules and learned routers: known before any model runs.

    f = item_features(item, prompt_tokens=412)
    f.as_dict()   # {"category=lookup": 1, "log_prompt_tokens": 6.02, "kw=json": 1, ...}
"""
import math
import re
from dataclasses import dataclass

# words in a question that tend to ask for more than a lookup (format, copying, arithmetic, comparison)
KEYWORDS = ("json", "verbatim", "quote", "exact", "list", "all", "total", "sum", "difference", "compare",
            "which", "latest", "final", "after", "both", "how many", "how much", "when", "who", "what")


@dataclass(frozen=True)
class Features:
    item_id: str
    category: str
    question: str
    prompt_tokens: int          # with the cheapest tier's tokenizer
    context_words: int
    n_chunks: int

    def matches(self, keyword: str) -> bool:
        return re.search(r"\b" + re.escape(keyword.lower()) + r"\b", self.question.lower()) is not None

    def as_dict(self) -> dict[str, float]:
        out = {f"category={self.category}": 1.0,
               "log_prompt_tokens": math.log1p(self.prompt_tokens),
               "log_context_words": math.log1p(self.context_words),
               "log_question_words": math.log1p(len(self.question.split())),
               "n_chunks": float(self.n_chunks),
               "has_number": float(bool(re.search(r"\d", self.question)))}
        out.update({f"kw={k}": 1.0 for k in KEYWORDS if self.matches(k)})
        return out


def item_features(item, prompt_tokens: int) -> Features:
    return Features(item.id, item.category, item.question, prompt_tokens,
                    sum(len(c.text.split()) for c in item.chunks), len(item.chunks))
