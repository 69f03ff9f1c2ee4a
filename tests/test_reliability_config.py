"""Config documents and --set values: duplicate keys, alias bombs and cycles, bad overrides, out-of-range
seeds and undecodable files are one UserError each, raised fast, never another exception."""
import os
import time

import pytest

from testbed.config import load_config
from testbed.errors import UserError
from testbed.safe_yaml import MAX_NODES, load_yaml

BASE = "name: t\nmodel: {id: random:tiny-llama}\nbaseline: a\n"


def write(tmp_path, text: str | bytes):
    p = tmp_path / "c.yaml"
    (p.write_bytes if isinstance(text, bytes) else p.write_text)(text)
    return p


def refused(tmp_path, text, overrides=None) -> str:
    with pytest.raises(UserError) as e:
        load_config(write(tmp_path, text), overrides, cuda_available=False)
    return e.value.message


def test_duplicate_arm_names_are_refused_not_merged(tmp_path):
    msg = refused(tmp_path, BASE + "arms:\n  a: {engine: hf}\n  b: {engine: hf}\n  a: {engine: paged}\n")
    assert "duplicate key 'a'" in msg and "line 7" in msg


def test_duplicate_top_level_keys_are_refused(tmp_path):
    assert "duplicate key 'baseline'" in refused(tmp_path, BASE + "baseline: b\narms: {a: {}, b: {}}\n")


def test_an_alias_bomb_is_refused_quickly(tmp_path):
    levels = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    t = time.monotonic()
    msg = refused(tmp_path, BASE + "arms: {a: {}}\ndescription: x\n" + "\n".join(levels) + "\n")
    assert time.monotonic() - t < 2 and ("aliases" in msg)


def test_a_cyclic_alias_inside_fallback_is_refused(tmp_path):
    msg = refused(tmp_path, BASE + "arms: {a: {}}\nfallback: &f {workload: {arrival: *f}}\n")
    assert "cycle" in msg


def test_aliases_and_merge_keys_within_bounds_still_work(tmp_path):
    cfg = load_config(write(tmp_path, BASE.replace("model: {id: random:tiny-llama}", "model: &m {id: random:tiny-llama}")
                            + "arms:\n  a: &arm {engine: hf, model: *m}\n  b: {<<: *arm, batch_size: 2}\n"),
                      cuda_available=False)
    assert cfg.arms["b"].model.id == "random:tiny-llama" and cfg.arms["b"].options.batch_size == 2


def test_expansion_bound_counts_expanded_nodes():
    wide = "a: &a [" + ", ".join(["1"] * 99) + "]\nb: [" + ", ".join(["*a"] * 99) + "]\n"
    assert len(load_yaml(wide, "x")["b"]) == 99                     # 99 * 100 nodes < MAX_NODES
    with pytest.raises(UserError):
        load_yaml("a: &a [" + ", ".join(["1"] * (MAX_NODES // 90)) + "]\nb: [" + ", ".join(["*a"] * 99) + "]\n", "x")


@pytest.mark.parametrize("override,says", [("workload.limit=[", "--set workload.limit"),
                                           ("workload.limit=", "no value"), ("workload.limit=  ", "no value"),
                                           ("workload.limit={a: &x [*x]}", "cycle"),
                                           ("workload=3", "workload")])
def test_bad_overrides(tmp_path, override, says):
    assert says in refused(tmp_path, BASE + "arms: {a: {}}\nworkload: {limit: 4}\n", [override])


@pytest.mark.parametrize("override", ["=3", ".=3", "workload..limit=2", "workload.=2"])
def test_an_override_with_an_empty_key_name_says_so(tmp_path, override):
    # these used to reach the schema as a key "" and print ": unknown key", naming nothing
    msg = refused(tmp_path, BASE + "arms: {a: {}}\n", [override])
    assert "empty key name" in msg and "--set" in msg


@pytest.mark.parametrize("text,line", [
    ("baseline: b\narms: {a: {}}\n", "  baseline 'b' is not an arm; arms are: a"),
    ("arms: {a: {}}\n'': 1\n", "  '': unknown key"),
])
def test_errors_without_a_field_path_print_no_empty_one(tmp_path, text, line):
    assert line in refused(tmp_path, BASE.replace("baseline: a\n", "") + text).splitlines()


def test_null_unsets_explicitly(tmp_path):
    cfg = load_config(write(tmp_path, BASE + "arms: {a: {}}\nworkload: {limit: 4}\n"), ["workload.limit=null"],
                      cuda_available=False)
    assert cfg.workload.limit is None


@pytest.mark.parametrize("seed", [-1, 2 ** 63, 2 ** 70])
def test_seeds_outside_0_to_2_63_are_refused(tmp_path, seed):
    assert "sampling.seed" in refused(tmp_path, BASE + f"arms: {{a: {{}}}}\nsampling: {{seed: {seed}}}\n")


TIERS = ("[{name: s, model: {id: random:tiny-llama}, usd_per_hour: 1}, "
         "{name: l, model: {id: random:tiny-llama}, usd_per_hour: 2}]")


@pytest.mark.parametrize("text,says", [
    ("arms: {a: {}}\nworkload: {seed: -1, arrival: {kind: poisson, rate: 5}}\n", "workload.seed"),
    ("arms: {a: {}}\nworkload: {seed: 4294967296, arrival: {kind: poisson, rate: 5}}\n", "workload.seed"),
    (f"arms: {{a: {{routing: {{tiers: {TIERS}, router: {{kind: random, seed: -1}}}}}}}}\n", "router.random.seed"),
    (f"arms: {{a: {{routing: {{tiers: {TIERS}, router: {{kind: learned, seed: 4294967296}}}}}}}}\n", "router.learned.seed"),
])
def test_numpy_seeds_outside_0_to_2_32_are_refused(tmp_path, text, says):
    # numpy's legacy generator (arrival gaps) and scikit-learn refuse them mid-run, with a traceback
    assert says in refused(tmp_path, BASE + text)


@pytest.mark.parametrize("text,says", [
    ("threads: 100000\n", "threads"),
    ("workload: {dataset: random, limit: 1, random: {input_len: 1000000000000}}\n", "workload.random.input_len"),
    ("workload: {dataset: random, limit: 1, random: {output_len: 100000000000000000000000}}\n",
     "workload.random.output_len"),
])
def test_sizes_that_exhaust_memory_before_any_check_are_refused(tmp_path, text, says):
    assert says in refused(tmp_path, BASE + "arms: {a: {}}\n" + text)


@pytest.mark.parametrize("levels", ["[0, 4]", "[4, -1]"])
def test_a_sweep_level_of_no_requests_in_flight_is_refused(tmp_path, levels):
    # a level of 0 used to pass and the run waited forever for a request it would never send
    text = BASE + f"arms: {{a: {{}}}}\nworkload: {{arrival: {{kind: sweep, concurrency: {levels}}}}}\n"
    assert "workload.arrival.concurrency" in refused(tmp_path, text)


def test_a_config_path_that_is_no_file_says_what_it_is(tmp_path):
    with pytest.raises(UserError, match="is a directory"):
        load_config(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UserError, match="is not a regular file"):
        load_config(tmp_path / "fifo")
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("text,says", [
    ("cost: {usd_per_hour: .inf}\n", "cost.usd_per_hour"),
    ("slo: {ttft_ms: .inf}\n", "slo.ttft_ms"),
    ("workload: {duration_s: .inf}\n", "workload.duration_s"),
    ("arms: {b: {routing: {tiers: [{name: s, model: {id: random:tiny-llama}, usd_per_hour: .inf}, "
     "{name: l, model: {id: random:tiny-llama}, usd_per_hour: 1}], router: {kind: random}}}}\n", "usd_per_hour"),
    ("arms: {b: {context: {steps: [{name: rerank, min_score: .nan}]}}}\n", "min_score"),
    ("arms: {b: {context: {steps: [{name: extract, ratio: 0.5, chunk_weight: .inf}]}}}\n", "chunk_weight"),
])
def test_nan_and_infinity_are_refused_where_no_field_means_them(tmp_path, text, says):
    # they used to pass: Infinity in the result JSON, NaN costs and scores
    text = text if text.startswith("arms") else "arms: {a: {}}\n" + text
    assert says in refused(tmp_path, BASE + text.replace("arms: {b:", "arms: {a: {}, b:"))


def test_infinite_rate_and_burstiness_still_mean_all_at_once_and_constant_gaps(tmp_path):
    cfg = load_config(write(tmp_path, BASE + "arms: {a: {}}\nworkload: {arrival: {kind: poisson, rate: .inf, "
                                             "burstiness: .inf}}\n"), cuda_available=False)
    assert cfg.workload.arrival.rate == cfg.workload.arrival.burstiness == float("inf")


@pytest.mark.parametrize("text,says", [
    ("arms: {a: {}}\nworkload: {limit: true}\n", "workload.limit"),
    ("arms: {a: {}}\nworkload: {max_new_tokens: yes}\n", "workload.max_new_tokens"),
    ("arms: {a: {}}\nrepeats: true\n", "repeats"),
    ("arms: {a: {}}\nslo: {ttft_ms: true}\n", "slo.ttft_ms"),
    ("arms: {a: {batch_size: true}}\n", "arms.a.batch_size"),
    ("arms: {a: {speculative: {method: prompt_lookup, num_draft_tokens: true}}}\n", "num_draft_tokens"),
    ("arms: {a: {}}\nworkload: {limit: '4'}\n", "workload.limit"),
    ("arms: {a: {context: {steps: [{name: rerank, top_n: true}]}}}\n", "top_n"),
    ("arms: {a: {context: {by_category: {lookup: [{name: budget, budget_tokens: yes}]}}}}\n", "budget_tokens"),
])
def test_booleans_and_strings_do_not_pass_as_numbers(tmp_path, text, says):
    # YAML types its scalars, so a bool where a number goes is a mistake; `limit: true` used to run 1 request
    assert says in refused(tmp_path, BASE + text)


def test_an_empty_category_list_is_refused_not_read_as_every_category(tmp_path):
    assert "workload.categories" in refused(tmp_path, BASE + "arms: {a: {}}\nworkload: {categories: []}\n")


def test_whole_floats_still_pass_where_floats_go(tmp_path):
    cfg = load_config(write(tmp_path, BASE + "arms: {a: {}}\nsampling: {temperature: 1}\nslo: {ttft_ms: 500}\n"),
                      cuda_available=False)
    assert cfg.sampling.temperature == 1.0 and cfg.slo.ttft_ms == 500.0


def test_a_bad_fallback_section_is_refused_on_a_cuda_machine_too(tmp_path):
    text = BASE + "arms: {a: {}}\nfallback: {workload: {limt: 2}}\n"
    msg = refused(tmp_path, text)
    assert "fallback" in msg and "limt" in msg
    with pytest.raises(UserError, match="fallback section.*\n.*limt"):
        load_config(write(tmp_path, text), cuda_available=True)


def test_an_unreadable_config_is_one_error(tmp_path, monkeypatch):
    path = write(tmp_path, BASE)

    def denied(*a, **kw):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(type(path), "read_text", denied)     # chmod 000 does not stop root
    with pytest.raises(UserError, match="cannot be read"):
        load_config(path, cuda_available=False)


@pytest.mark.parametrize("data,says", [(b"name: \xff\xfe\n", "UTF-8"), ("a: " + "[" * 5000 + "]" * 5000, "YAML")])
def test_undecodable_and_deeply_nested_files(tmp_path, data, says):
    assert says in refused(tmp_path, data)


def test_a_control_character_is_one_line_naming_its_line(tmp_path):
    msg = refused(tmp_path, BASE + "arms: {a: {}}\ndescription: a\x00b\n")
    assert "line 5" in msg and "#x0000" in msg and "\n" not in msg
