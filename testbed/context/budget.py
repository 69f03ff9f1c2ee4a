"""A context-token cap: a sliding window over the ranked chunks, optionally summarising the overflow.

    {name: budget, budget_tokens: 512}                              # question + context <= 512 tokens
    {name: budget, budget_tokens: 512, window: tail, summarize: true, summary_tokens: 48}

`budget_tokens` caps the question plus the context (the part of the prompt that grows with
retrieval); a budget the question alone fills is an error naming this step's field. The window
keeps whole chunks from the head (best-ranked first) or the tail (most recent), and cuts the
chunk at the edge to the tokens left. With `summarize`, `summary_tokens` of the budget go to a
greedy summary of what fell out, made by the arm's small model; its chunk id names its sources
("summary:c3+c7"), so an answer drawn from it stays traceable.
"""
from typing import Literal

from pydantic import Field

from testbed.context.base import STEPS, Step, StepOptions
from testbed.context.lm import greedy_text
from testbed.context.text import count_tokens
from testbed.errors import UserError
from testbed.workloads.items import Chunk

SUMMARY_INPUT_TOKENS = 1024      # the overflow a summary reads; keeps its prefill cost bounded on a CPU


class BudgetOptions(StepOptions):
    budget_tokens: int = Field(ge=1, description="cap on question + context tokens")
    window: Literal["head", "tail"] = Field("head", description="keep the first (best-ranked) or the last chunks")
    summarize: bool = Field(False, description="summarise the chunks that do not fit with the small model")
    summary_tokens: int = Field(48, ge=8, le=512, description="tokens the summary may take from the budget")


def truncate(lm, text: str, n: int, keep: str) -> str:
    """The first (head) or last (tail) `n` tokens of `text` (words when no model is given)."""
    if lm is None:
        ws = text.split()
        return " ".join(ws[:n] if keep == "head" else ws[-n:] if n else [])
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    return lm.tokenizer.decode(ids[:n] if keep == "head" else ids[len(ids) - n:])


def window(lm, chunks: list[Chunk], tokens: list[int], budget: int, keep: str) -> tuple[list[Chunk], list[Chunk]]:
    """(chunks kept in their order, chunks dropped) under `budget` tokens; the edge chunk is cut to fit."""
    order = list(range(len(chunks))) if keep == "head" else list(range(len(chunks)))[::-1]
    kept, dropped, left = [], [], budget
    for i in order:
        c = chunks[i]
        if tokens[i] <= left:
            kept.append(c)
            left -= tokens[i]
        elif left > 0 and not dropped:
            kept.append(Chunk(c.id, truncate(lm, c.text, left, keep), c.source))
            dropped.append(Chunk(c.id, truncate(lm, c.text, tokens[i] - left, "tail" if keep == "head" else "head"),
                                 c.source))
            left = 0
        else:
            dropped.append(c)
    return (kept if keep == "head" else kept[::-1]), dropped


@STEPS.register("budget")
class BudgetStep(Step):
    Options = BudgetOptions

    def check(self, items, at, before):
        """The budget must leave room for the longest question it will see."""
        if not items:
            return
        q = count_tokens(self.lm, [it.question for it in items])
        worst = max(range(len(items)), key=q.__getitem__)
        if q[worst] >= self.options.budget_tokens:
            raise UserError(f"{at}.budget_tokens = {self.options.budget_tokens} is smaller than the question of "
                            f"item {items[worst].id} ({q[worst]} tokens)",
                            f"raise {at}.budget_tokens above {q[worst]}, e.g. {q[worst] + 256}")

    def __call__(self, query, chunks, item=None):
        o = self.options
        q = count_tokens(self.lm, [query])[0]
        if q >= o.budget_tokens:
            who = f"item {item.id}: " if item else ""
            raise UserError(f"{who}{self.where}.budget_tokens = {o.budget_tokens} is smaller than the question "
                            f"itself ({q} tokens)", f"raise {self.where}.budget_tokens above {q}, e.g. {q + 256}")
        tokens = count_tokens(self.lm, [c.text for c in chunks])
        room = o.budget_tokens - q
        kept, dropped = window(self.lm, chunks, tokens, room, o.window)
        if dropped and o.summarize and room > o.summary_tokens:
            kept, dropped = window(self.lm, chunks, tokens, room - o.summary_tokens, o.window)
            kept.append(self.summary(query, dropped))
        return kept, {"budget_tokens": o.budget_tokens, "question_tokens": q,
                      "dropped": [c.id for c in dropped], "summarized": bool(dropped and o.summarize)}

    def summary(self, query: str, dropped: list[Chunk]) -> Chunk:
        text = truncate(self.lm, "\n".join(c.text for c in dropped), SUMMARY_INPUT_TOKENS, "head")
        prompt = f"Summarise the facts in this text that help answer: {query}\n\n{text}"
        ids = "+".join(dict.fromkeys(c.id for c in dropped))
        return Chunk(f"summary:{ids}", greedy_text(self.lm, prompt, self.options.summary_tokens))
