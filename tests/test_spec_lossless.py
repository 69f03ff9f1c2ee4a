"""Speculative decoding is lossless: greedy tokens equal the plain hf engine's for every proposer,
on the hf engine and batched on the paged engine (block sizes, preemption), and under sampling the first token after speculation is distributed as the target's next token."""
import time

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from testbed.config import ModelSpec
from testbed.drive import run_all
from testbed.engines.hf import HFEngine, HFOptions
from testbed.engines.hf_cache import forward, new_cache, rollback
from testbed.engines.paged.engine import PagedEngine, PagedOptions
from testbed.engines.sampling import logits_to_probs
from testbed.models import load_model
from testbed.request import Request, SamplingParams
from testbed.speculative.adaptive import Controller
from testbed.speculative.config import SpeculativeConfig
from testbed.speculative.stats import SpecStats

SECTIONS = {
    "prompt_lookup": {"method": "prompt_lookup", "ngram": 2, "num_draft_tokens": 4},
    "prompt_lookup_adaptive": {"method": "prompt_lookup", "num_draft_tokens": 2, "adaptive": {"max": 8}},
    "self_speculative": {"method": "self_speculative", "layers": 1, "num_draft_tokens": 3},
    "draft_other_model": {"draft": {"id": "random:tiny-qwen2"}, "num_draft_tokens": 3},
    "draft_itself_adaptive": {"draft": {"id": "random:tiny-llama"}, "num_draft_tokens": 3, "adaptive": True},
    "draft_lookup": {"draft": {"id": "random:tiny-qwen2"}, "lookup": True, "ngram": 2, "num_draft_tokens": 4},
}


def prompts(n: int = 4) -> list[list[int]]:
    """Random token prompts that repeat a span, so prompt lookup finds matches."""
    g = torch.Generator().manual_seed(3)
    out = []
    for i in range(n):
        body = torch.randint(5, 250, (6 + 5 * i,), generator=g).tolist()
        out.append(body + body[:4])
    return out


def requests(lm, max_new: int = 24, sampling: SamplingParams | None = None) -> list[Request]:
    return [Request(id=f"r{i}", prompt_ids=p, max_new_tokens=max_new, arrival_time=time.perf_counter(),
                    sampling=sampling or SamplingParams(), eos_token_ids=lm.eos_token_ids)
            for i, p in enumerate(prompts())]


def outputs(done: list[Request]) -> dict[str, list[int]]:
    return {r.id: r.output_ids for r in done}


def divergences(got: dict[str, list[int]], want: dict[str, list[int]]) -> dict[str, int]:
    """{request id: first position where the tokens differ} (empty when every request matches)."""
    out = {}
    for rid, ref in want.items():
        out_ids = got[rid]
        pos = next((i for i, (a, b) in enumerate(zip(ref, out_ids)) if a != b), None)
        if pos is None and len(ref) != len(out_ids):
            pos = min(len(ref), len(out_ids))
        if pos is not None:
            out[rid] = pos
    return out


def run(lm, section: dict | None, batch_size: int = 1, reqs=None) -> tuple[list[Request], HFEngine]:
    sections = {"speculative": SpeculativeConfig(**section)} if section else {}
    engine = HFEngine(lm, HFOptions(batch_size=batch_size), sections)
    return run_all(engine, reqs or requests(lm)), engine


@pytest.fixture(scope="module")
def chaotic_baseline(chaotic_lm):
    done, _ = run(chaotic_lm, None)
    return outputs(done)


def test_the_chaotic_model_makes_varied_text(chaotic_baseline):
    tokens = [t for out in chaotic_baseline.values() for t in out]
    assert len(set(tokens)) > 10


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("name", list(SECTIONS))
def test_greedy_tokens_equal_the_baseline(chaotic_lm, chaotic_baseline, name, batch_size):
    done, engine = run(chaotic_lm, SECTIONS[name], batch_size)
    assert divergences(outputs(done), chaotic_baseline) == {}
    st = engine.stats()
    assert st["spec_num_draft_tokens"] > 0 and 0 <= st["spec_acceptance_rate"] <= 1
    assert all(r.stats["speculative"]["steps"] > 0 for r in done)


def test_rejections_happen_so_rollback_is_exercised(chaotic_lm):
    _, engine = run(chaotic_lm, SECTIONS["self_speculative"])
    assert engine.stats()["spec_acceptance_rate"] < 0.9


def test_accepted_runs_share_a_timestamp_and_every_token_has_one(tiny_lm):
    done, engine = run(tiny_lm, SECTIONS["prompt_lookup"])
    for r in done:
        assert len(r.token_times) == len(r.output_ids) == r.max_new_tokens and r.finish_reason == "length"
        assert r.token_times == sorted(r.token_times) and r.token_times[0] >= r.arrival_time
    gaps = np.diff([t for r in done for t in r.token_times])
    assert (gaps == 0).sum() >= engine.stats()["spec_num_accepted_tokens"] - len(done)


def test_eos_inside_an_accepted_run_stops_there(chaotic_lm, chaotic_baseline):
    base = chaotic_baseline["r2"]
    eos = base[9]
    stop = base.index(eos)
    reqs = requests(chaotic_lm)
    for r in reqs:
        r.eos_token_ids = (eos,)
    done, _ = run(chaotic_lm, SECTIONS["draft_itself_adaptive"], reqs=reqs)
    r2 = next(r for r in done if r.id == "r2")
    assert r2.output_ids == base[:stop + 1] and r2.finish_reason == "stop"


def test_sampling_the_verifier_cannot_honour_fails_the_request(tiny_lm):
    reqs = requests(tiny_lm, sampling=SamplingParams(temperature=1e-5))
    done, _ = run(tiny_lm, SECTIONS["prompt_lookup"], reqs=reqs)
    assert all(r.status == "failed" and "temperature" in r.error for r in done)


def test_seeded_sampling_is_reproducible(chaotic_lm):
    outs = [outputs(run(chaotic_lm, SECTIONS["draft_other_model"],
                        reqs=requests(chaotic_lm, sampling=SamplingParams(temperature=1.0, seed=5)))[0])
            for _ in range(2)]
    assert outs[0] == outs[1]


SAMPLING = SamplingParams(temperature=1.5, top_k=6)


@pytest.mark.parametrize("name", ["draft_other_model", "prompt_lookup"])
def test_first_token_after_speculation_is_distributed_as_the_target(chaotic_lm, name):
    """Many single speculative steps from one context; chi-square of the first emitted token against p."""
    lm, n = chaotic_lm, 800
    prompt = prompts()[1]
    context = prompt + [prompt[0]]            # ends in a token seen before: prompt lookup proposes
    decoder = SpeculativeConfig(**SECTIONS[name]).build(lm)
    decoder.proposer.reset()
    cache = new_cache(lm.model)
    gen = torch.Generator().manual_seed(11)
    with torch.inference_mode():
        p = logits_to_probs(forward(lm.model, context, new_cache(lm.model), keep=1)[-1], SAMPLING)
        forward(lm.model, context[:-1], cache, keep=1)
        counts = np.zeros(p.shape[-1])
        for _ in range(n):
            req = Request(id="s", prompt_ids=prompt, max_new_tokens=8, sampling=SAMPLING, output_ids=[prompt[0]],
                          token_times=[0.0], status="running")
            decoder._step(req, cache, Controller(3), SpecStats(), gen)
            counts[req.output_ids[1]] += 1
            rollback(cache, len(context) - 1)
    support = p > 0
    assert counts[~support.numpy()].sum() == 0
    expected = p[support].double().numpy()
    assert chisquare(counts[support.numpy()], n * expected / expected.sum()).pvalue > 1e-3


GOLDEN_LIKE = [
    "Quote this clause verbatim: \"The Supplier shall deliver the Goods to the Buyer's warehouse at 14 Harbour Road "
    "no later than thirty (30) days after the date of each Purchase Order.\"",
    "From the text below, copy the sentence that states the notice period, exactly as written.\n\nEither party may "
    "terminate this Agreement for convenience by giving ninety (90) days' written notice to the other party. "
    "Payment is due within 45 days of invoice.",
    "Fill this JSON record from the document: {\"tenant\": ?, \"rent\": ?}. Document: The tenant, Maple Bakery Ltd, "
    "pays a monthly rent of GBP 2,400 for the premises at 3 Mill Lane.",
]


@pytest.mark.slow
def test_smollm2_greedy_tokens_equal_the_baseline_for_every_proposer():
    torch.set_num_threads(2)
    lm = load_model(ModelSpec(id="smollm2-135m"), "cpu")

    def reqs():
        return [Request(id=f"g{i}", prompt_ids=lm.tokenizer.apply_chat_template(
                    [{"role": "user", "content": t}], add_generation_prompt=True, tokenize=True, return_dict=True
                )["input_ids"], max_new_tokens=40, arrival_time=time.perf_counter(), eos_token_ids=lm.eos_token_ids)
                for i, t in enumerate(GOLDEN_LIKE)]

    base = outputs(run(lm, None, reqs=reqs())[0])
    for section in [SECTIONS["prompt_lookup"], {"method": "self_speculative", "layers": 15, "num_draft_tokens": 2},
                    {"draft": {"id": "smollm2-135m"}, "num_draft_tokens": 4, "adaptive": True}]:
        done, engine = run(lm, section, reqs=reqs())
        assert outputs(done) == base, section
        assert engine.stats()["spec_num_draft_tokens"] > 0
    pl = {**SECTIONS["prompt_lookup"], "ngram": 3, "ngram_min": 2, "num_draft_tokens": 10}
    done, engine = run_paged(lm, pl, dict(block_size=16, kv_budget_tokens=2048), reqs=reqs())
    assert outputs(done) == base and engine.stats()["spec_num_draft_tokens"] > 0


# The paged engine: drafts per sequence, every sequence's k + 1 positions verified in one batched forward.
PAGED_CASES = [dict(block_size=16), dict(block_size=4, max_num_batched_tokens=16),
               dict(block_size=2, num_blocks=30, max_num_batched_tokens=24),        # tight: preempts
               dict(block_size=3, max_num_seqs=2, enable_prefix_caching=False)]


def run_paged(lm, section: dict, case: dict, reqs=None) -> tuple[list[Request], PagedEngine]:
    engine = PagedEngine(lm, PagedOptions(**case), {"speculative": SpeculativeConfig(**section)})
    return run_all(engine, reqs or requests(lm)), engine


@pytest.mark.parametrize("name", ["prompt_lookup", "prompt_lookup_adaptive", "self_speculative",
                                  "draft_other_model", "draft_itself_adaptive", "draft_lookup"])
def test_paged_greedy_tokens_equal_the_baseline_for_block_sizes_and_preemption(chaotic_lm, chaotic_baseline, name):
    preempted = 0
    for case in PAGED_CASES:
        done, engine = run_paged(chaotic_lm, SECTIONS[name], case)
        assert divergences(outputs(done), chaotic_baseline) == {}, case
        st = engine.stats()
        assert st["spec_num_draft_tokens"] > 0 and 0 <= st["spec_acceptance_rate"] <= 1, case
        assert all(r.stats["speculative"]["steps"] > 0 for r in done)
        assert engine.blocks.num_free == len(engine.blocks.blocks)          # rejected slots' blocks came back
        preempted += st["preemptions"]
    assert preempted > 0


def test_paged_rejections_happen_and_verify_several_sequences_per_step(chaotic_lm):
    _, engine = run_paged(chaotic_lm, SECTIONS["self_speculative"], PAGED_CASES[0])
    st = engine.stats()
    assert st["spec_acceptance_rate"] < 0.9                     # rollback and block trimming exercised
    assert st["mean_step_tokens"] > 4 and st["max_concurrent_seqs"] == 4


def test_paged_accepted_runs_share_a_timestamp(tiny_lm):
    done, engine = run_paged(tiny_lm, SECTIONS["prompt_lookup"], PAGED_CASES[1])
    for r in done:
        assert len(r.token_times) == len(r.output_ids) == r.max_new_tokens
        assert r.token_times == sorted(r.token_times) and r.token_times[0] >= r.arrival_time
    zero_gaps = sum(int((np.diff(r.token_times) == 0).sum()) for r in done)
    assert zero_gaps >= engine.stats()["spec_num_accepted_tokens"] > 0


def test_paged_sampling_the_verifier_cannot_honour_fails_the_request(tiny_lm):
    reqs = requests(tiny_lm, sampling=SamplingParams(temperature=1e-5))
    done, _ = run_paged(tiny_lm, SECTIONS["prompt_lookup"], PAGED_CASES[0], reqs=reqs)
    assert all(r.status == "failed" and "temperature" in r.error for r in done)


def test_paged_seeded_sampling_is_reproducible_and_uses_drafts(chaotic_lm):
    runs = [run_paged(chaotic_lm, SECTIONS["draft_other_model"], PAGED_CASES[1],
                      reqs=requests(chaotic_lm, sampling=SamplingParams(temperature=1.0, seed=5))) for _ in range(2)]
    assert outputs(runs[0][0]) == outputs(runs[1][0])
    assert runs[0][1].stats()["spec_num_draft_tokens"] > 0


def test_unseeded_sampled_requests_draw_from_the_global_rng_as_the_engines_do(chaotic_lm):
    """Verification seeds as engines/sampling.py does: a request without a seed draws from torch's global
    RNG (it used to get seed 0, so every unseeded speculative request drew the same numbers)."""
    unseeded = SamplingParams(temperature=1.0)

    def sampled(global_seed: int) -> dict:
        torch.manual_seed(global_seed)
        return outputs(run(chaotic_lm, SECTIONS["prompt_lookup"], reqs=requests(chaotic_lm, 12, unseeded))[0])

    assert sampled(1) == sampled(1)
    assert sampled(1) != sampled(2)
