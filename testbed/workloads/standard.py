"""Standard benchmark workloads beside the golden sets, as `vllm bench serve` knows them.

    workload: {dataset: random, limit: 64, random: {input_len: 256, output_len: 64, range_ratio: 0.5},
               ignore_eos: true}
    workload: {dataset: data/sharegpt.json}      # ShareGPT: [{"conversations": [{"from", "value"}, ...]}, ...]
    workload: {dataset: data/prompts.jsonl}      # {"prompt": "...", "output_tokens": 32} per line (vLLM's custom)
    workload: {dataset: data/prompts.txt}        # one prompt per line
    workload: {dataset: "hf:anon8231489123/ShareGPT_Vicuna_unfiltered"}   # a hub dataset (needs `datasets`, a hub)

Their items carry `meta["raw_prompt"]`: the text is sent as it is (no chat template, no system
prompt), as vLLM's completions client sends it. Random items are token sequences built when
the request is made, with the arm's tokenizer: lengths are drawn uniformly from
[L(1-r), L(1+r)] (integers, vLLM's rule), the ids walk the non-special vocabulary from a random
offset, and a decode/encode round trip is cut back to the drawn length. ShareGPT items take the
first human turn as the prompt and, unless the workload fixes it, the length of the first gpt
turn (in the arm's tokenizer) as max_new_tokens; an entry without both turns is an error that
names its line. These workloads have no reference answers: no quality score, no diagnosis.
"""
import json
import math
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from testbed.errors import UserError
from testbed.workloads.items import Item


class RandomSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # at most 2^20: the prompts are built as arrays of this length before any context check
    input_len: int = Field(256, ge=1, le=2 ** 20, description="mean prompt tokens")
    output_len: int = Field(64, ge=1, le=2 ** 20, description="mean output tokens (max_new_tokens per request)")
    range_ratio: float = Field(0.0, ge=0.0, lt=1.0, description="lengths uniform in [L(1-r), L(1+r)]")


def random_lengths(spec: RandomSpec, n: int, seed: int) -> tuple[list[int], list[int], list[int]]:
    """(input lengths, output lengths, vocabulary offsets) for n requests; integer-uniform ranges."""
    rng = np.random.default_rng(seed)
    r = spec.range_ratio
    lo_in, hi_in = math.floor(spec.input_len * (1 - r)), math.ceil(spec.input_len * (1 + r))
    lo_out, hi_out = max(1, math.floor(spec.output_len * (1 - r))), max(1, math.ceil(spec.output_len * (1 + r)))
    ins = rng.integers(max(1, lo_in), hi_in + 1, size=n)
    outs = rng.integers(lo_out, hi_out + 1, size=n)
    offsets = rng.integers(0, 2**31 - 1, size=n)
    return ins.tolist(), outs.tolist(), offsets.tolist()


def random_items(spec: RandomSpec | None, n: int | None, seed: int) -> list[Item]:
    if n is None:
        raise UserError("workload.limit: the random dataset needs a number of requests",
                        "set workload.limit, e.g. limit: 64")
    spec = spec or RandomSpec()
    ins, outs, offsets = random_lengths(spec, n, seed)
    return [Item(id=f"random-{i}", category="random", question="", answers=[], max_new_tokens=o,
                 meta={"raw_prompt": True, "random_input_len": L, "random_offset": off})
            for i, (L, o, off) in enumerate(zip(ins, outs, offsets))]


def longest_random_request(items: list[Item]) -> int:
    """The most tokens (prompt + output) a random item asks for; 0 without random items. Known before any
    prompt is built, so a request beyond the model's context is refused before minutes of tokenising."""
    return max((it.meta["random_input_len"] + (it.max_new_tokens or 0) for it in items
                if "random_input_len" in it.meta), default=0)


def random_prompt_ids(tokenizer, length: int, offset: int, index: int) -> list[int]:
    """About `length` ids walking the non-special vocabulary, chosen so that re-tokenising their text
    gives them back: the text is re-encoded and cut (or topped up) to `length` for up to 10 rounds."""
    allowed = _allowed(tokenizer)
    ids = allowed[(offset + index + np.arange(length)) % len(allowed)].tolist()
    for _ in range(10):
        again = list(tokenizer(tokenizer.decode(ids), add_special_tokens=False)["input_ids"])
        if again == ids:
            break
        ids = again[:length] if len(again) >= length else again + ids[len(again):length]
    return ids


_BUILT: dict[tuple[int, str], tuple[str, list[int], int | None]] = {}


def raw_prompt(item: Item, tokenizer) -> tuple[str, list[int], int | None] | None:
    """(text as sent, its ids, max_new_tokens or None) for a standard-workload item; None for the others.

    Built once per tokenizer and item (the runner's pre-run checks build every one), so the
    tokenisation is not paid again when the request arrives, as vLLM samples prompts up front."""
    if not item.meta.get("raw_prompt"):
        return None
    key = (id(tokenizer), item.id)
    if key not in _BUILT:
        _BUILT[key] = _build(item, tokenizer)
    return _BUILT[key]


def _allowed(tokenizer) -> np.ndarray:
    special = set(tokenizer.all_special_ids)
    return np.array([t for t in range(len(tokenizer)) if t not in special])


def _build(item: Item, tokenizer) -> tuple[str, list[int], int | None]:
    if "random_input_len" in item.meta:
        ids = random_prompt_ids(tokenizer, item.meta["random_input_len"], item.meta["random_offset"],
                                int(item.id.rsplit("-", 1)[1]))
        text = tokenizer.decode(ids)
        return text, list(tokenizer(text, add_special_tokens=False)["input_ids"]), None
    ids = list(tokenizer(item.question, add_special_tokens=True)["input_ids"])
    ref = item.meta.get("reference_output")
    max_new = None if item.max_new_tokens or ref is None else max(1, len(tokenizer(ref, add_special_tokens=False)["input_ids"]))
    return item.question, ids, max_new


def hf_items(spec: str, limit: int | None) -> list[Item]:
    """`hf:<repo>[@split]`: rows with ShareGPT `conversations`, or a `prompt` / `text` column, from the hub."""
    repo, _, split = spec.removeprefix("hf:").partition("@")
    try:
        import datasets
    except ImportError:
        raise UserError(f"workload.dataset: {spec!r} needs the `datasets` package",
                        "pip install datasets (and hub access), or download the file and give its path") from None
    try:
        rows = datasets.load_dataset(repo, split=split or "train", streaming=True)
        rows = list(rows.take(limit)) if limit else list(rows)
    except Exception as e:      # the hub client raises many kinds; all mean "not loaded"
        raise UserError(f"workload.dataset: could not load {repo!r} from the hub: {str(e).splitlines()[0][:200]}",
                        "check hub access, or download the file and give its path") from None
    if rows and "conversations" in rows[0]:        # one row per line, so errors name the row
        return sharegpt_items(Path(spec), "[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]")
    key = next((k for k in ("prompt", "text", "question") if rows and k in rows[0]), None)
    if key is None:
        raise UserError(f"workload.dataset: {repo!r} rows have none of conversations, prompt, text, question",
                        "use a ShareGPT-shaped dataset or one with a prompt column")
    return [Item(id=f"hf-{i}", category=repo, question=str(r[key]), answers=[], meta={"raw_prompt": True})
            for i, r in enumerate(rows)]


def element_lines(text: str) -> list[tuple[int, object]]:
    """The elements of a top-level JSON array with the line each starts on."""
    dec, pos = json.JSONDecoder(), text.index("[") + 1
    out = []
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            return out
        obj, end = dec.raw_decode(text, pos)
        out.append((text.count("\n", 0, pos) + 1, obj))
        pos = end


def is_sharegpt(data: list) -> bool:
    return bool(data) and all(isinstance(d, dict) and "conversations" in d for d in data)


def sharegpt_items(path: Path, text: str) -> list[Item]:
    """The first human turn as the prompt, the first gpt turn as the reference output; missing turns, an
    empty prompt or an id given twice: an error naming the line."""
    items, seen = [], {}
    for line, rec in element_lines(text):
        turns = rec.get("conversations") if isinstance(rec, dict) else None
        turns = turns[:2] if isinstance(turns, list) and all(isinstance(t, dict) for t in turns[:2]) else []
        roles = [t.get("from") for t in turns]
        if roles != ["human", "gpt"] or not all(isinstance(t.get("value"), str) for t in turns):
            raise UserError(f"workload.dataset: {path}:{line}: ShareGPT entry {_entry_id(rec, len(items))!r} needs a "
                            f"human turn then a gpt turn in \"conversations\" (got roles {roles})",
                            'give each entry "conversations": [{"from": "human", "value": ...}, '
                            '{"from": "gpt", "value": ...}], or drop it')
        _check_prompt(turns[0]["value"], f"{path}:{line}", "give the human turn some text, or drop the entry")
        item_id = str(rec.get("id", f"sharegpt-{len(items)}"))
        if item_id in seen:     # requests, records and the prompt cache are keyed by it
            raise UserError(f"workload.dataset: {path}:{line}: duplicate ShareGPT id {item_id!r} (first at line "
                            f"{seen[item_id]})", "give every entry a unique id, or drop the ids (then numbered)")
        seen[item_id] = line
        items.append(Item(id=item_id, category="sharegpt", question=turns[0]["value"], answers=[],
                          meta={"raw_prompt": True, "reference_output": turns[1]["value"], "line": line}))
    return items


def _entry_id(rec, n: int):
    return rec.get("id", n) if isinstance(rec, dict) else n


def _check_prompt(prompt: str, at: str, fix: str) -> None:
    """An empty prompt has no token to prefill from: every engine would fail on it mid-run."""
    if not prompt.strip():
        raise UserError(f"workload.dataset: {at}: the prompt is empty", fix)


PROMPT_FIX = 'write {"prompt": "...", "output_tokens": 32} per line, or plain prompts one per line in a .txt file'


def prompt_items(path: Path, text: str) -> list[Item]:
    """vLLM's custom JSONL ({"prompt", "output_tokens"?} per line), or plain prompts, one per line, taken as
    they are. The first non-blank line decides which for the whole file: a JSON object, or text."""
    items, jsonl = [], _first_record(text) is not None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        prompt, out = _prompt_record(path, n, line) if jsonl else (line, None)
        _check_prompt(prompt, f"{path}:{n}", "give the line some text, or drop it")
        items.append(Item(id=f"prompt-{len(items)}", category="prompts", question=prompt, answers=[],
                          max_new_tokens=out, meta={"raw_prompt": True, "line": n}))
    return items


def _prompt_record(path: Path, n: int, line: str) -> tuple[str, int | None]:
    """(prompt, output_tokens) of one line of vLLM's custom JSONL."""
    try:
        rec = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as e:
        why = e.msg if isinstance(e, json.JSONDecodeError) else "nested too deeply"
        raise UserError(f"workload.dataset: {path}:{n}: not valid JSON ({why})", PROMPT_FIX) from None
    prompt, out = (rec.get("prompt"), rec.get("output_tokens")) if isinstance(rec, dict) else (None, None)
    if not isinstance(prompt, str) or (out is not None and (isinstance(out, bool) or not isinstance(out, int)
                                                            or out < 1)):
        raise UserError(f"workload.dataset: {path}:{n}: a prompt line needs \"prompt\" (text) and "
                        "optionally \"output_tokens\" (a positive integer)", PROMPT_FIX)
    return prompt, out


def is_prompt_file(path: Path, text: str) -> bool:
    """JSONL whose first record has "prompt" and no "question", or a .txt file but one of our items' JSONL."""
    rec = _first_record(text)
    if path.suffix == ".txt":
        return rec is None or "question" not in rec
    return rec is not None and "prompt" in rec and "question" not in rec


def _first_record(text: str) -> dict | None:
    """The first non-blank line as a JSON object, or None where it is not one."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    try:
        rec = json.loads(first)
    except (json.JSONDecodeError, RecursionError):    # not JSONL; the item loader says what is wrong
        return None
    return rec if isinstance(rec, dict) else None
