"""Turn an Item (and the chunks a context pipeline kept) into chat messages and prompt token ids.

The wording is tuned for small instruction models (SmolLM2-135M-Instruct, measured on the
golden lookup/clause items): a system line asking for one short sentence in the context's own
words, numbered context passages, then the question, then the item's instruction if it has one.
Alternatives measured worse: an "Answer with the exact words from the context." line after
the question, and SmolLM's own default system prompt (the model rambles past 32 tokens).

    messages = build_messages(item, chunks=kept)
    text, ids = render_prompt(tokenizer, messages)
"""
from testbed.workloads.items import Chunk, Item

DEFAULT_SYSTEM = ("You answer questions from the given context in one short sentence that uses the exact "
                  "words of the context.")
CLOSED_BOOK_INSTRUCTION = "Answer briefly."


def format_context(chunks: list[Chunk]) -> str:
    """Chunks as numbered passages, '[1] text', one blank line apart, in the order given."""
    return "\n\n".join(f"[{i + 1}] {c.text}" for i, c in enumerate(chunks))


def build_messages(item: Item, chunks: list[Chunk] | None = None, system_prompt: str | None = None) -> list[dict]:
    """Chat messages for one item: a system line, then context + question + instruction as the user turn.

    `chunks` defaults to item.chunks; an empty list gives a question-only prompt (closed book).
    `item.instruction` ("Reply with JSON only: ...") follows the question where the item sets one.
    """
    chunks = item.chunks if chunks is None else chunks
    if chunks:
        user = f"Context:\n{format_context(chunks)}\n\nQuestion: {item.question}"
        user += f"\n{item.instruction}" if item.instruction else ""
    else:
        user = f"Question: {item.question}\n{item.instruction or CLOSED_BOOK_INSTRUCTION}"
    return [{"role": "system", "content": system_prompt or DEFAULT_SYSTEM}, {"role": "user", "content": user}]


def render_prompt(tokenizer, messages: list[dict]) -> tuple[str, list[int]]:
    """(prompt text, prompt token ids) for a tokenizer.

    With a chat template: the template with the generation prompt; the text already holds the
    special tokens, so none are added. Without one (base models): plain "system\\n\\nuser\\nAnswer:"
    text, tokenised with the tokenizer's own special tokens (the BOS some base models need).
    transformers 5 returns a BatchEncoding from apply_chat_template(tokenize=True), hence two steps.
    """
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text, list(tokenizer(text, add_special_tokens=False)["input_ids"])
    text = "\n\n".join(m["content"] for m in messages) + "\nAnswer:"
    return text, list(tokenizer(text, add_special_tokens=True)["input_ids"])
