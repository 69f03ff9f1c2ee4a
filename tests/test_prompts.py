"""Prompt construction: what the model sees for an item, with and without a chat template."""
import pytest

from testbed.models import tiny_tokenizer
from testbed.workloads.items import Chunk, Item
from testbed.workloads.prompts import CLOSED_BOOK_INSTRUCTION, DEFAULT_SYSTEM, build_messages, render_prompt


@pytest.fixture
def item() -> Item:
    return Item(id="x", category="lookup", question="How long is the notice period?", answers=["90 days"],
                chunks=[Chunk("a", "Fees are due monthly."), Chunk("b", "Notice is 90 days.")], gold_chunk_ids=["b"])


def test_context_is_numbered_in_rank_order_then_question(item):
    system, user = build_messages(item)
    assert system == {"role": "system", "content": DEFAULT_SYSTEM} and user["role"] == "user"
    text = user["content"]
    assert text.startswith("Context:\n[1] Fees are due monthly.\n\n[2] Notice is 90 days.\n\n")
    assert text.endswith("Question: How long is the notice period?")


def test_explicit_chunks_replace_the_items_own(item):
    text = build_messages(item, chunks=[item.chunks[1]])[1]["content"]
    assert "[1] Notice is 90 days." in text and "Fees" not in text and "[2]" not in text


def test_no_chunks_gives_a_question_only_prompt(item):
    for msgs in (build_messages(item, chunks=[]),
                 build_messages(Item(id="y", category="c", question="What is 2 + 2?", answers=["4"]))):
        text = msgs[1]["content"]
        assert "Context" not in text and "[1]" not in text
        assert text.startswith("Question: ") and text.endswith(CLOSED_BOOK_INSTRUCTION)


def test_item_instruction_and_system_prompt_override_defaults(item):
    item.instruction = 'Reply with JSON only: {"days": integer}'
    system, user = build_messages(item, system_prompt="Be terse.")
    assert system["content"] == "Be terse."
    assert user["content"].endswith("Question: How long is the notice period?\n" + item.instruction)


def test_render_with_chat_template(item):
    tok = tiny_tokenizer()
    text, ids = render_prompt(tok, build_messages(item))
    assert text.startswith("<|im_start|>system\n" + DEFAULT_SYSTEM) and text.endswith("<|im_start|>assistant\n")
    assert isinstance(ids, list) and all(isinstance(i, int) for i in ids)
    assert ids == tok(text, add_special_tokens=False)["input_ids"]
    assert ids.count(tok.convert_tokens_to_ids("<|im_start|>")) == 3        # system, user, assistant
    assert tok.decode(ids) == text


def test_render_without_chat_template_is_plain_text(item):
    tok = tiny_tokenizer()
    tok.chat_template = None
    text, ids = render_prompt(tok, build_messages(item))
    assert "<|im_start|>" not in text and text.endswith("\nAnswer:")
    assert text.index("Context:") < text.index("Question:") < text.index("Answer:")
    assert tok.decode(ids) == text
