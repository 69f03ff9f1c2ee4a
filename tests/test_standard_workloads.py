"""Standard workloads (random, ShareGPT, a file of prompts) and ignore_eos honoured by every engine."""
import json

import numpy as np
import pytest

from testbed.drive import run_all
from testbed.engines import ENGINES
from testbed.plugins import load_plugins
from testbed.errors import UserError
from testbed.request import Request
from testbed.workloads.datasets import load_dataset
from testbed.workloads.standard import RandomSpec, random_lengths, raw_prompt


def test_random_lengths_are_pinned_and_inside_the_range():
    ins, outs, _ = random_lengths(RandomSpec(input_len=100, output_len=20, range_ratio=0.5), 2000, seed=0)
    assert min(ins) >= 50 and max(ins) <= 150 and min(outs) >= 10 and max(outs) <= 30
    assert abs(np.mean(ins) - 100) < 2 and abs(np.mean(outs) - 20) < 0.5
    assert len(set(ins)) == 101                           # every integer of [50, 150] is drawn
    # pinned: a change to the sampling rule (or its seed use) changes these
    assert (ins[:5], outs[:5]) == ([135, 114, 101, 77, 81], [25, 10, 20, 27, 26])
    fixed = random_lengths(RandomSpec(input_len=64, output_len=8, range_ratio=0.0), 50, seed=3)
    assert set(fixed[0]) == {64} and set(fixed[1]) == {8}


def test_random_lengths_are_vllms_where_vllm_is_installed():
    utils = pytest.importorskip("vllm.benchmarks.datasets.utils")

    class NoSpecials:                      # vLLM subtracts the tokenizer's added special tokens; none here
        vocab_size = 1000

        def num_special_tokens_to_add(self):
            return 0
    theirs = utils.get_sampling_params(np.random.default_rng(5), 300, 0.3, 200, 40, NoSpecials())
    ours = random_lengths(RandomSpec(input_len=200, output_len=40, range_ratio=0.3), 300, seed=5)
    assert (ours[0], ours[1]) == (theirs[0].tolist(), theirs[1].tolist())


def test_random_prompts_have_the_drawn_token_length(tiny_lm):
    items = load_dataset("random", limit=40, random=RandomSpec(input_len=100, output_len=5, range_ratio=0.5), seed=1)
    built = [raw_prompt(it, tiny_lm.tokenizer) for it in items]
    off = [len(ids) - it.meta["random_input_len"] for it, (_, ids, _) in zip(items, built)]
    assert sum(d == 0 for d in off) >= 36 and max(map(abs, off)) <= 2   # a BPE round trip may merge across a cut
    assert all(tiny_lm.tokenizer.decode(ids) == text for text, ids, _ in built)
    assert all(it.max_new_tokens in range(2, 9) for it in items)
    assert load_dataset("random", limit=6, random=RandomSpec(input_len=40), seed=1)[0].id == "random-0"
    with pytest.raises(UserError, match="workload.limit"):
        load_dataset("random")


def sharegpt(tmp_path, entries):
    path = tmp_path / "sg.json"
    path.write_text("[\n" + ",\n".join(json.dumps(e) for e in entries) + "\n]\n")
    return path


def test_sharegpt_prompt_is_the_first_human_turn_and_output_length_the_gpt_turn(tmp_path, tiny_lm):
    conv = [{"from": "human", "value": "Tell me a story."}, {"from": "gpt", "value": "Once upon a time there"}]
    items = load_dataset(str(sharegpt(tmp_path, [{"id": "a", "conversations": conv}])))
    text, ids, max_new = raw_prompt(items[0], tiny_lm.tokenizer)
    assert text == "Tell me a story." and items[0].answers == []
    assert max_new == len(tiny_lm.tokenizer("Once upon a time there", add_special_tokens=False)["input_ids"])


def test_sharegpt_entry_with_missing_turns_names_its_line(tmp_path):
    good = {"id": "a", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}
    bad = {"id": "b", "conversations": [{"from": "human", "value": "only one turn"}]}
    with pytest.raises(UserError, match=r"sg.json:3: ShareGPT entry 'b'"):
        load_dataset(str(sharegpt(tmp_path, [good, bad])))


H, G = {"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}


@pytest.mark.parametrize("entries,says", [
    ([{"conversations": ["hi", "yo"]}], "sg.json:2: ShareGPT entry 0 needs a human turn"),
    ([{"conversations": [None, G]}], "sg.json:2: ShareGPT entry 0 needs a human turn"),
    ([{"conversations": [{"from": "human", "value": "  "}, G]}], "sg.json:2: the prompt is empty"),
    ([{"id": "x", "conversations": [H, G]}, {"id": "x", "conversations": [H, G]}],
     "sg.json:3: duplicate ShareGPT id 'x' (first at line 2)")])
def test_bad_sharegpt_entries_name_their_line(tmp_path, entries, says):
    with pytest.raises(UserError) as e:
        load_dataset(str(sharegpt(tmp_path, entries)))
    assert says in e.value.message and e.value.fix


@pytest.mark.parametrize("text,says", [
    ('{"prompt": "a"}\n{"prompt": "b",\n', "p.jsonl:2: not valid JSON"),
    ('{"prompt": "a"}\n{"prompt": "b", "x": ' + "[" * 100_000 + "]" * 100_000 + "}\n", "p.jsonl:2: not valid JSON"),
    ('{"prompt": "a"}\nplain text\n', "p.jsonl:2: not valid JSON"),
    ('{"prompt": "a"}\n[1, 2]\n', 'p.jsonl:2: a prompt line needs "prompt"'),
    ('{"prompt": "a", "output_tokens": true}\n', 'p.jsonl:1: a prompt line needs "prompt"'),
    ('{"prompt": ""}\n', "p.jsonl:1: the prompt is empty"),
    ('[{"prompt": "a"}, {"prompt": "b"}]', "p.jsonl: a JSON array of prompts")])
def test_bad_prompt_lines_name_their_line(tmp_path, text, says):
    (tmp_path / "p.jsonl").write_text(text)
    with pytest.raises(UserError) as e:
        load_dataset(str(tmp_path / "p.jsonl"))
    assert says in e.value.message and e.value.fix


def test_a_prompt_file_is_text_or_jsonl_as_its_first_line_is(tmp_path):
    (tmp_path / "p.txt").write_text('plain\n{not json\n{"prompt": 3}\n')
    assert [it.question for it in load_dataset(str(tmp_path / "p.txt"))] == ["plain", "{not json", '{"prompt": 3}']
    (tmp_path / "p.txt").write_text('{"prompt": "a", "output_tokens": 2}\n{not json\n')
    with pytest.raises(UserError, match="p.txt:2: not valid JSON"):
        load_dataset(str(tmp_path / "p.txt"))


def test_prompt_files_text_and_vllm_custom_jsonl(tmp_path):
    (tmp_path / "p.txt").write_text("first prompt\n\nsecond prompt\n")
    (tmp_path / "p.jsonl").write_text(json.dumps({"prompt": "a\nb", "output_tokens": 7}) + "\n")
    assert [it.question for it in load_dataset(str(tmp_path / "p.txt"))] == ["first prompt", "second prompt"]
    (it,) = load_dataset(str(tmp_path / "p.jsonl"))
    assert (it.question, it.max_new_tokens, it.meta["raw_prompt"]) == ("a\nb", 7, True)
    (tmp_path / "bad.jsonl").write_text(json.dumps({"prompt": "x", "output_tokens": 0}) + "\n")
    with pytest.raises(UserError, match="bad.jsonl:1"):
        load_dataset(str(tmp_path / "bad.jsonl"))


@pytest.mark.parametrize("engine", ["hf", "paged"])
def test_ignore_eos_is_honoured(tiny_lm, engine):
    """Make the token the model emits first the EOS: it stops after one token, unless EOS is ignored."""
    load_plugins()
    cls = ENGINES.get(engine)
    prompt = list(tiny_lm.tokenizer("hello there", add_special_tokens=False)["input_ids"])
    first = run_all(cls(tiny_lm, cls.Options()), [Request(id="p", prompt_ids=prompt, max_new_tokens=1)])[0]
    eos = (first.output_ids[0],)
    stop = Request(id="s", prompt_ids=prompt, max_new_tokens=6, eos_token_ids=eos)
    go = Request(id="g", prompt_ids=prompt, max_new_tokens=6, eos_token_ids=(), ignore_eos=True)
    out = {r.id: r for r in run_all(cls(tiny_lm, cls.Options()), [stop]) + run_all(cls(tiny_lm, cls.Options()), [go])}
    assert out["s"].num_output_tokens == 1 and out["s"].finish_reason == "stop"
    assert out["g"].num_output_tokens == 6 and out["g"].finish_reason == "length"


def test_a_hub_dataset_without_the_datasets_package_says_how_to_get_it():
    try:
        import datasets  # noqa: F401
        pytest.skip("datasets is installed; loading needs a hub")
    except ImportError:
        pass
    with pytest.raises(UserError, match="needs the `datasets` package"):
        load_dataset("hf:some/dataset", limit=3)
