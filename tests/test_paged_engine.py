"""The paged engine against the hf engine (the reference): same greedy tokens, honest KV stats, bad input."""
import time

import pytest
import torch

from testbed.drive import drive, run_all
from testbed.engines.hf import HFEngine, HFOptions
from testbed.engines.paged.engine import PagedEngine, PagedOptions
from testbed.engines.paged.model_runner import check_architecture
from testbed.errors import UserError
from testbed.request import Request, SamplingParams

SHAPES = [(7, 10), (40, 5), (3, 12), (100, 8), (33, 20), (1, 6), (64, 9)]   # (prompt, max_new)


def make_requests(shapes=SHAPES, seed=1, prefix=()):
    g = torch.Generator().manual_seed(seed)
    now = time.perf_counter()
    return [Request(id=f"r{i}", prompt_ids=list(prefix) + torch.randint(10, 200, (n,), generator=g).tolist(),
                    max_new_tokens=m, arrival_time=now) for i, (n, m) in enumerate(shapes)]


def reference(lm, reqs):
    run_all(HFEngine(lm, HFOptions(batch_size=1)), reqs)
    return {r.id: r.output_ids for r in reqs}


CASES = [dict(block_size=16), dict(block_size=4, num_blocks=40, max_num_batched_tokens=16),
         dict(block_size=2, num_blocks=60, max_num_batched_tokens=8),          # tight: preempts
         dict(block_size=3, num_blocks=60, chunked_prefill=False, max_num_batched_tokens=130),
         dict(block_size=5, max_num_seqs=2, enable_prefix_caching=False)]


@pytest.mark.parametrize("model", ["tiny_lm", "tiny_qwen"])
def test_greedy_tokens_equal_hf_for_block_sizes_budgets_and_preemption(model, request):
    lm = request.getfixturevalue(model)
    want = reference(lm, make_requests())
    preempted = 0
    for case in CASES:
        engine = PagedEngine(lm, PagedOptions(**case))
        got = {r.id: r.output_ids for r in run_all(engine, make_requests())}
        assert got == want, case
        preempted += engine.stats()["preemptions"]
    assert preempted > 0        # the tight case really exercised preemption


def test_requests_arriving_over_time_match_and_stamp_after_arrival(tiny_lm):
    want = reference(tiny_lm, make_requests())
    engine = PagedEngine(tiny_lm, PagedOptions(block_size=4, max_num_batched_tokens=24))
    done = []
    offsets = [0.0, 0.0, 0.01, 0.02, 0.02, 0.05, 0.06]
    drive(engine, make_requests(), lambda req, arrival: _stamp(req, arrival), offsets, None, done.append)
    assert {r.id: r.output_ids for r in done} == want
    for r in done:
        assert r.token_times == sorted(r.token_times) and r.token_times[0] >= r.arrival_time


def _stamp(req, arrival):
    req.arrival_time = arrival
    return req


def test_shared_prefixes_hit_the_cache_and_keep_tokens(tiny_lm):
    prefix = list(range(20, 60))
    want = reference(tiny_lm, make_requests(prefix=prefix))
    engine = PagedEngine(tiny_lm, PagedOptions(block_size=4, max_num_seqs=1))
    got = {r.id: r.output_ids for r in run_all(engine, make_requests(prefix=prefix))}
    assert got == want and engine.stats()["prefix_cache_hit_rate"] > 0.3


def test_kv_stats_hold_the_contract_keys_and_small_waste(tiny_lm):
    engine = PagedEngine(tiny_lm, PagedOptions(block_size=2, kv_budget_tokens=512))
    run_all(engine, make_requests())
    st = engine.stats()
    for key in ("kv_cache_allocated_tokens", "kv_cache_used_tokens", "kv_waste_pct", "kv_peak_blocks",
                "max_concurrent_seqs", "preemptions", "prefix_cache_hit_rate"):
        assert key in st
    assert st["max_concurrent_seqs"] == len(SHAPES) and 0 < st["kv_waste_pct"] < 10
    assert st["kv_cache_used_tokens"] <= st["kv_cache_allocated_tokens"] == 2 * st["kv_peak_blocks"]
    assert engine.blocks.num_free == len(engine.blocks.blocks)       # everything returned


def test_seeded_sampling_is_reproducible_and_differs_from_greedy(tiny_lm):
    outs = []
    for _ in range(2):
        reqs = make_requests(SHAPES[:3])
        for r in reqs:
            r.sampling = SamplingParams(temperature=1.5, top_k=50, top_p=0.9, seed=7)
        run_all(PagedEngine(tiny_lm, PagedOptions()), reqs)
        outs.append([r.output_ids for r in reqs])
    assert outs[0] == outs[1]
    assert outs[0] != list(reference(tiny_lm, make_requests(SHAPES[:3])).values())


def test_budget_too_small_for_one_request_is_a_user_error(tiny_lm):
    engine = PagedEngine(tiny_lm, PagedOptions(block_size=4, num_blocks=5))
    with pytest.raises(UserError, match=r"KV budget of 20 tokens.*'r0'"):
        engine.add_request(make_requests([(30, 4)])[0])


def test_request_beyond_context_fails_and_the_rest_run(tiny_lm):
    reqs = make_requests([(5, 3), (tiny_lm.max_context, 4)])
    done = {r.id: r for r in run_all(PagedEngine(tiny_lm, PagedOptions()), reqs)}
    assert done["r1"].status == "failed" and "exceeds the model's context" in done["r1"].error
    assert done["r0"].status == "finished" and len(done["r0"].output_ids) == 3


def test_unsupported_architecture_names_the_supported_ones():
    cfg = type("Cfg", (), {"model_type": "gpt2"})()
    with pytest.raises(UserError, match="llama, qwen2"):
        check_architecture(cfg)


def test_options_reject_two_sizes():
    with pytest.raises(ValueError, match="not both"):
        PagedOptions(kv_budget_tokens=64, num_blocks=4)


@pytest.mark.slow
def test_smollm2_greedy_equals_hf():
    from testbed.config import ModelSpec
    from testbed.models import load_model
    torch.set_num_threads(1)
    lm = load_model(ModelSpec(id="smollm2-135m", dtype="float32"), "cpu")
    tok = lm.tokenizer
    prompts = ["What is the capital of France?", "The supplier shall deliver the goods by 1 March 2024. "
               "Late delivery incurs a penalty of 2% per week. When must the goods be delivered?",
               "List three colours."]
    reqs = lambda: [Request(id=str(i), prompt_ids=tok.apply_chat_template(  # noqa: E731
        [{"role": "user", "content": p}], add_generation_prompt=True, tokenize=True, return_dict=False),
        max_new_tokens=24, eos_token_ids=lm.eos_token_ids) for i, p in enumerate(prompts)]
    want = reference(lm, reqs())
    got = {r.id: r.output_ids for r in run_all(PagedEngine(lm, PagedOptions(block_size=8)), reqs())}
    assert got == want


def test_prepacked_linears_match_f_linear_and_leave_the_shared_model_alone(tiny_lm):
    import torch.nn.functional as F
    from testbed.engines.paged.linear import Linears
    mm = Linears(tiny_lm)
    layer = tiny_lm.model.model.layers[0]
    before = layer.mlp.up_proj.weight.clone()
    x = torch.randn(3, 5, tiny_lm.model.config.hidden_size)
    assert mm.on and mm.packed                      # float32 on the CPU: packed
    assert torch.allclose(mm(layer.mlp.up_proj, x), F.linear(x, layer.mlp.up_proj.weight), atol=1e-5)
    assert torch.allclose(mm.mlp(layer.mlp, x), layer.mlp(x), atol=1e-5)
    assert torch.equal(layer.mlp.up_proj.weight, before)   # the hf engine's weights are not touched
    assert not Linears(tiny_lm, enabled=False).packed


def test_the_packed_copy_is_shared_while_engines_hold_it_and_freed_after(tiny_lm):
    import gc
    import weakref
    from testbed.engines.paged.linear import Linears
    a, b = Linears(tiny_lm), Linears(tiny_lm)
    assert a.packed is b.packed                     # one copy per model, however many paged engines
    gone = weakref.ref(a.packed)
    del a, b
    gc.collect()
    assert gone() is None                           # a sequential run frees it before the next arm loads
    assert Linears(tiny_lm).packed                  # and packs again when a paged engine needs it


def test_a_self_speculative_draft_reuses_its_targets_packed_copy(tiny_lm):
    from types import SimpleNamespace
    from testbed.engines.paged.linear import Linears
    from testbed.speculative.self_speculative import truncated_model
    view = truncated_model(tiny_lm.model, 1)
    target = Linears(tiny_lm)
    draft = Linears(SimpleNamespace(model=view, dtype=tiny_lm.dtype, device=tiny_lm.device))
    assert draft.packed is target.packed            # the first-N-layers view packs nothing of its own
    layer = view.model.layers[0]
    x = torch.randn(2, tiny_lm.model.config.hidden_size)
    assert torch.allclose(draft(layer.mlp.up_proj, x), target(layer.mlp.up_proj, x))


def test_decodes_of_mixed_lengths_attend_in_groups_equal_to_one_padded_call():
    import torch.nn.functional as F
    from testbed.engines.paged.attention import PAD_SLACK, build_meta, gather, paged_attention
    torch.manual_seed(0)
    bs, kvh, h, d = 4, 2, 4, 8
    lengths = [3, 40, 5, 37, 17, 1, 64, 9]                     # contexts incl. the new token
    tables, nxt = [], 0
    for n in lengths:
        tables.append(list(range(nxt, nxt + -(-n // bs))))
        nxt += len(tables[-1])
    k_cache, v_cache = torch.randn(nxt, bs, kvh, d), torch.randn(nxt, bs, kvh, d)
    q = torch.randn(len(lengths), h, d)
    meta = build_meta([(n - 1, 1, t) for n, t in zip(lengths, tables)], bs, "cpu")
    for g in meta.decodes:                                     # bounded padding, every decode once
        used = sum(-(-lengths[r] // bs) for r in g.rows.tolist())
        assert g.tables.shape[0] * g.tables.shape[1] <= PAD_SLACK * used
    assert sorted(r for g in meta.decodes for r in g.rows.tolist()) == list(range(len(lengths)))
    assert 1 < len(meta.decodes) < len(lengths)
    got = paged_attention(q, None, None, k_cache, v_cache, meta, 0.3)
    for i, (n, t) in enumerate(zip(lengths, tables)):         # each row: plain attention over its own keys
        keys = gather(k_cache, torch.tensor(t))[:, :n]
        vals = gather(v_cache, torch.tensor(t))[:, :n]
        want = F.scaled_dot_product_attention(q[i][:, None], keys, vals, scale=0.3, enable_gqa=True)
        assert torch.allclose(got[i], want.flatten(), atol=1e-5)
