"""Fuzz (hypothesis): any config document, --set value or dataset line either loads or raises the
project's UserError, never another exception. Bounded: a fixed number of examples per test, no deadline
flakiness (the first example pays for imports), derandomised so CI runs the same inputs every time."""
import json

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testbed.config import load_config
from testbed.errors import UserError
from testbed.workloads.datasets import ITEM_KEYS, load_dataset

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

scalars = (st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=True)
           | st.text(max_size=12) | st.sampled_from(["hf", "paged", "golden", "random:tiny-llama", "inf", "1e12"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


def mapping(keys, extra_values=values):
    return st.dictionaries(st.sampled_from(keys), extra_values, max_size=len(keys))


model = mapping(["id", "dtype", "revision", "trust_remote_code"],
                st.sampled_from(["random:tiny-llama", "auto", "float32", None, True, 3, []]) | values)
arrival = mapping(["kind", "rate", "rates", "burstiness", "n"],
                  st.sampled_from(["offline", "poisson", "concurrency", "sweep", [1, "inf"], 0, -1, 2.5]) | values)
workload = mapping(["dataset", "categories", "limit", "max_new_tokens", "arrival", "warmup", "seed"],
                   arrival | st.sampled_from(["golden", "golden/lookup", 0, -3, "all", 1e12]) | values)
arm = mapping(["engine", "model", "sampling", "max_new_tokens", "batch_size", "kv_budget_tokens", "block_size",
               "speculative", "context", "routing"],
              model | st.sampled_from(["hf", "paged", "openai", 1, 0, 10 ** 12]) | values)
config = st.fixed_dictionaries(
    {"name": st.sampled_from(["t", "bad name", 3]), "model": model | values,
     "baseline": st.sampled_from(["a", "b", None])},
    optional={"arms": st.dictionaries(st.sampled_from(["a", "b"]), arm | values, max_size=2),
              "workload": workload | values, "sampling": mapping(["temperature", "top_p", "top_k", "seed"]),
              "fallback": st.fixed_dictionaries({}, optional={"model": model, "workload": workload}) | values,
              "device": st.sampled_from(["cpu", "auto", "tpu"]), "repeats": values, "slo": values, "cost": values})
overrides = st.lists(st.tuples(st.sampled_from(["workload.limit", "arms.a.engine", "model", "sampling.seed",
                                                "workload.arrival.rate", "fallback.model.id", "a.b.c"]),
                               st.text(max_size=12)).map(lambda kv: f"{kv[0]}={kv[1]}"), max_size=2)


def loads_or_user_error(fn) -> None:
    try:
        fn()
    except UserError:
        pass


@FUZZ
@given(doc=config, sets=overrides)
def test_config_documents_load_or_raise_user_error(tmp_path, doc, sets):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    loads_or_user_error(lambda: load_config(path, sets, cuda_available=False))


@FUZZ
@given(text=st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_arbitrary_config_text_loads_or_raises_user_error(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    loads_or_user_error(lambda: load_config(path, cuda_available=False))


item = st.dictionaries(st.sampled_from(ITEM_KEYS + ("extra",)), values | st.sampled_from(
    [["a"], "a", [{"id": "c0", "text": "t"}], ["c0"], {"type": "object"}, 8, -5, "abc"]), max_size=len(ITEM_KEYS))
required = st.fixed_dictionaries({"id": values, "question": values, "answers": values | st.just(["x"])})


@FUZZ
@given(lines=st.lists(st.builds(lambda a, b: {**a, **b}, required, item) | values, min_size=1, max_size=3),
       raw=st.binary(max_size=60))
def test_dataset_lines_load_or_raise_user_error(tmp_path, lines, raw):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\n".join(json.dumps(x).encode() for x in lines) + b"\n" + raw)
    loads_or_user_error(lambda: load_dataset(str(path)))
    path.write_bytes(json.dumps(lines).encode())                     # the same records as one JSON array
    loads_or_user_error(lambda: load_dataset(str(path)))
    path.write_bytes(json.dumps({"data": lines}).encode())           # and as a SQuAD-shaped document
    loads_or_user_error(lambda: load_dataset(str(path)))
