"""Proposers, the draft-length controller, the stats formulas and the `speculative:` section's validation."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from testbed.arm import ArmPlan
from testbed.config import ModelSpec, validate
from testbed.errors import UserError
from testbed.models import load_model
from testbed.request import SamplingParams
from testbed.speculative.adaptive import AdaptiveK, best_k
from testbed.speculative.checks import check_arm
from testbed.speculative.config import SpeculativeConfig
from testbed.speculative.draft_model import DraftModel, common_prefix
from testbed.speculative.prompt_lookup import find_continuation
from testbed.speculative.self_speculative import draft_depth, truncated_model
from testbed.speculative.stats import SpecStats

GREEDY = SamplingParams()


def test_prompt_lookup_prefers_the_longest_ngram_then_the_earliest_match():
    ctx = np.array([7, 1, 2, 3, 9, 9, 5, 2, 3, 4, 4, 0, 1, 2, 3])
    assert find_continuation(ctx, 2, n_max=3) == [9, 9]          # 3-gram 1 2 3 at position 1
    assert find_continuation(ctx, 2, n_max=2) == [9, 9]          # 2-gram 2 3: earliest of two matches
    assert find_continuation(np.array([5, 6, 8, 6]), 3, n_max=3) == [8, 6]   # falls back to the 1-gram


def test_prompt_lookup_returns_nothing_without_a_match_and_respects_ngram_min():
    assert find_continuation(np.array([1, 2, 3, 4]), 5, n_max=3) == []
    ctx = np.array([5, 6, 8, 6])
    assert find_continuation(ctx, 3, n_max=3, n_min=2) == []
    assert find_continuation(np.array([4]), 3, n_max=3) == []


def test_prompt_lookup_proposer_reads_its_section(tiny_lm):
    prop = SpeculativeConfig(method="prompt_lookup", ngram=2, num_draft_tokens=3).proposer(tiny_lm)
    draft = prop.propose([1, 2, 3, 4, 5, 1, 2], 3, GREEDY, None)
    assert draft.tokens == [3, 4, 5] and draft.probs is None


def test_draft_model_cache_rolls_back_to_the_shared_prefix(tiny_lm):
    """A proposer reusing its cache across steps proposes exactly what a fresh one would."""
    prop = DraftModel(SpeculativeConfig(draft={"id": "random:tiny-llama"}), tiny_lm, draft_lm=tiny_lm)
    fresh = DraftModel(SpeculativeConfig(draft={"id": "random:tiny-llama"}), tiny_lm, draft_lm=tiny_lm)
    g = torch.Generator().manual_seed(0)
    ctx = torch.randint(5, 250, (12,), generator=g).tolist()
    prop.reset()
    for step in range(6):
        got = prop.propose(ctx, 4, GREEDY, None).tokens
        assert prop.cache.get_seq_length() == len(prop.seen) == len(ctx) + 3
        fresh.reset()
        assert got == fresh.propose(ctx, 4, GREEDY, None).tokens
        keep = step % 3                                            # accept 0..2 drafts, then a corrected token
        ctx = ctx + got[:keep] + [int(torch.randint(5, 250, (1,), generator=g))]


def test_draft_model_sampling_returns_the_q_it_sampled_from(tiny_lm):
    prop = DraftModel(SpeculativeConfig(draft={"id": "random:tiny-llama"}), tiny_lm, draft_lm=tiny_lm)
    prop.reset()
    draft = prop.propose([3, 4, 5], 3, SamplingParams(temperature=1.0), torch.Generator().manual_seed(0))
    assert draft.probs.shape == (3, tiny_lm.model.config.vocab_size)
    assert torch.allclose(draft.probs.sum(-1), torch.ones(3))
    assert all(draft.probs[i, t] > 0 for i, t in enumerate(draft.tokens))


def test_a_draft_with_another_tokenizer_is_refused_naming_both(tiny_lm):
    other = SimpleNamespace(spec_id="other/draft-model", tokenizer=SimpleNamespace(get_vocab=lambda: {"a": 0, "b": 1}))
    with pytest.raises(UserError) as e:
        DraftModel(SpeculativeConfig(draft={"id": "other/draft-model"}), tiny_lm, draft_lm=other)
    assert "other/draft-model" in str(e.value) and "random:tiny-llama" in str(e.value)


def test_a_draft_with_another_vocabulary_size_is_refused_naming_both(tiny_lm):
    config = SimpleNamespace(vocab_size=tiny_lm.model.config.vocab_size + 64)
    other = SimpleNamespace(spec_id="padded/draft", tokenizer=tiny_lm.tokenizer, model=SimpleNamespace(config=config))
    with pytest.raises(UserError) as e:
        DraftModel(SpeculativeConfig(draft={"id": "padded/draft"}), tiny_lm, draft_lm=other)
    msg = str(e.value)
    assert "'padded/draft'" in msg and "'random:tiny-llama'" in msg and str(config.vocab_size) in msg


def test_self_speculative_draft_shares_weights_and_leaves_the_target_whole(tiny_lm):
    model = tiny_lm.model
    draft = truncated_model(model, 1)
    assert len(draft.model.layers) == 1 and draft.config.num_hidden_layers == 1
    assert len(model.model.layers) == 2 and model.config.num_hidden_layers == 2
    assert draft.lm_head.weight.data_ptr() == model.lm_head.weight.data_ptr()
    assert draft.model.norm is model.model.norm and draft.model.layers[0] is model.model.layers[0]
    x = torch.tensor([[5, 6, 7]])
    with torch.inference_mode():
        assert not torch.allclose(draft(x).logits, model(x).logits)      # the draft really skips a layer


def test_self_speculative_layers_must_leave_the_target_deeper(tiny_lm):
    with pytest.raises(UserError, match="between 1 and 1"):
        truncated_model(tiny_lm.model, 2)


def arm_config(spec: dict) -> dict:
    return {"name": "t", "model": {"id": "random:tiny-llama"}, "baseline": "a",
            "arms": {"a": {"engine": "hf"}, "s": {"engine": "hf", "speculative": spec}}}


@pytest.mark.parametrize("spec, message", [
    ({"method": "prompt_lookup", "num_draft_tokens": 0}, "arms.s.speculative.num_draft_tokens"),
    ({"method": "prompt_lookup", "num_draft_tokens": 65}, "arms.s.speculative.num_draft_tokens"),
    ({"method": "prompt_lokup"}, "unknown method 'prompt_lokup'"),
    ({"num_draft_tokens": 4}, "method draft_model needs draft"),
    ({"method": "prompt_lookup", "layers": 3}, "layers applies to method self_speculative only"),
    ({"method": "prompt_lookup", "ngram": 2, "ngram_min": 3}, "ngram_min 3 is above ngram 2"),
    ({"method": "prompt_lookup", "adaptive": {"min": 9, "max": 4}}, "adaptive.min 9 is above adaptive.max 4"),
    ({"method": "prompt_lookup", "drafts": 4}, "unknown key"),
    ({"method": "self_speculative", "layers": 1.5}, "share of the depth below 1"),
    ({"method": "prompt_lookup", "lookup": True}, "lookup applies to methods draft_model and self_speculative"),
])
def test_bad_sections_are_config_errors_naming_the_path(spec, message):
    with pytest.raises(UserError) as e:
        validate(arm_config(spec))
    assert message in str(e.value)


def test_a_good_section_validates_to_its_class():
    cfg = validate(arm_config({"method": "self_speculative", "layers": 1, "adaptive": True}))
    sec = cfg.arms["s"].sections["speculative"]
    assert isinstance(sec, SpeculativeConfig) and sec.adaptive is True and sec.draft is None
    draft = validate(arm_config({"draft": {"id": "random:tiny-qwen2"}})).arms["s"].sections["speculative"]
    assert draft.method == "draft_model" and draft.draft == ModelSpec(id="random:tiny-qwen2")


def test_self_speculative_depth_is_a_count_or_a_share():
    assert draft_depth(18, 30) == 18 and draft_depth(0.6, 30) == 18 and draft_depth(None, 30) == 15
    assert draft_depth(0.1, 2) == 1


def test_best_k_is_the_longest_draft_whose_last_token_still_pays():
    assert best_k(0.9, 0.2, 1, 32) == 15            # 0.9**15 = 0.206 >= 0.2 > 0.9**16
    assert best_k(0.5, 0.2, 1, 32) == 2
    assert best_k(0.1, 0.2, 1, 32) == 1             # clamped to the minimum
    assert best_k(1.0, 0.2, 1, 8) == 8 and best_k(0.0, 0.2, 2, 8) == 2


def test_adaptive_k_grows_on_acceptance_and_shrinks_on_rejection():
    ctl = AdaptiveK(k=4, k_min=1, k_max=16, min_gain=0.2)
    for _ in range(10):
        ctl.update(ctl.k, ctl.k, 0.0, 0.01)
    assert ctl.k == 16
    for _ in range(30):
        ctl.update(ctl.k, 0, 0.0, 0.01)
    assert ctl.k == 1
    ctl.update(0, 0, 0.0, 0.01)                     # an empty draft says nothing about acceptance
    assert ctl.k == 1


def test_adaptive_k_counts_the_measured_draft_cost():
    cheap, dear = AdaptiveK(4, 1, 16), AdaptiveK(4, 1, 16)
    for _ in range(20):
        cheap.update(4, 3, draft_s=0.0, verify_s=0.01)
        dear.update(4, 3, draft_s=0.02, verify_s=0.01)     # each draft token costs half a target step
    assert cheap.k > dear.k >= 1


def test_stats_follow_the_vllm_definitions():
    st = SpecStats()
    st.record(4, 4, 0.1, 0.2)
    st.record(4, 1, 0.1, 0.2)
    st.record(0, 0, 0.0, 0.1)                       # a step without a draft: not a draft
    st.k_final = [4]
    m = st.metrics()
    assert m["spec_acceptance_rate"] == 5 / 8
    assert m["spec_mean_accepted_tokens"] == 1 + 5 / 2
    assert m["spec_acceptance_per_position"] == [1.0, 0.5, 0.5, 0.5]
    assert m["spec_num_steps"] == 3 and m["spec_num_drafts"] == 2
    assert abs(m["spec_draft_cost_ratio"] - (0.2 / 8) / (0.5 / 3)) < 1e-12


def test_stats_without_drafts_leave_the_rates_absent():
    st = SpecStats()
    st.record(0, 0, 0.0, 0.1)
    assert "spec_acceptance_rate" not in st.metrics() and "spec_mean_accepted_tokens" not in st.metrics()


def test_common_prefix():
    assert common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2 and common_prefix([], [1]) == 0



def plan(spec: dict, sampling: dict | None = None, target: str = "random:tiny-llama"):
    """The ArmPlan of arm `s` of a validated two-arm config, its target (random:tiny-llama) loaded."""
    cfg = arm_config(spec)
    cfg["model"] = {"id": target}
    if sampling:
        cfg["sampling"] = sampling
    cfg = validate(cfg)
    return ArmPlan("s", cfg, load_model(cfg.model, "cpu"))


def test_check_arm_refuses_a_draft_with_another_tokenizer_naming_both():
    with pytest.raises(UserError) as e:
        check_arm(plan({"draft": {"id": "smollm2-135m"}}))          # a 49k-token vocabulary vs the tiny one
    msg = str(e.value)
    assert msg.startswith("arms.s: speculative.draft") and "'smollm2-135m'" in msg and "'random:tiny-llama'" in msg


@pytest.mark.parametrize("sampling, message", [({"temperature": 1e-5}, "arms.s.sampling: .*temperature 1e-05"),
                                               ({"temperature": 0.5, "top_p": 1.0}, None)])
def test_check_arm_refuses_sampling_the_verifier_cannot_honour(sampling, message):
    p = plan({"method": "prompt_lookup"}, sampling)
    if message is None:
        check_arm(p)
        return
    with pytest.raises(UserError, match=message):
        check_arm(p)


def test_check_arm_builds_the_proposer_once_and_refuses_a_too_deep_self_draft():
    p = plan({"draft": {"id": "random:tiny-qwen2"}})
    check_arm(p)
    section = p.arm.sections["speculative"]
    assert section.proposer(p.lm) is section.proposer(p.lm)        # the engine reuses the checked proposer
    with pytest.raises(UserError, match="arms.s: speculative.layers: 5 is not between 1 and 1"):
        check_arm(plan({"method": "self_speculative", "layers": 5}))
    check_arm(ArmPlan("a", validate(arm_config({"method": "prompt_lookup"})), p.lm))   # no section: nothing to do


def test_a_draft_larger_than_the_target_warns_with_the_measured_cost(capsys):
    check_arm(plan({"draft": {"id": "random:small-llama"}}))          # 6 layers x 256 drafting for 2 x 64
    err = capsys.readouterr().err
    assert "warning: arms.s: the draft 'random:small-llama'" in err and "'random:tiny-llama'" in err
    c = float(err.split("measured c = ")[1].split(" ")[0])
    assert c > 0


def test_a_draft_smaller_than_the_target_does_not_warn(capsys):
    check_arm(plan({"draft": {"id": "random:tiny-llama"}}, target="random:small-llama"))
    assert "warning" not in capsys.readouterr().err


def test_arms_drafting_with_one_model_share_its_loaded_weights():
    from testbed.plugins import load_plugins
    from testbed.runner import Experiment
    load_plugins()
    draft = {"draft": {"id": "random:tiny-llama", "dtype": "float32"}, "num_draft_tokens": 2}
    cfg = validate({"name": "shared_draft", "model": {"id": "random:small-llama", "dtype": "float32"}, "device": "cpu",
                    "workload": {"dataset": "golden", "limit": 1, "max_new_tokens": 4}, "baseline": "a",
                    "arms": {"a": {"engine": "hf", "speculative": draft},
                             "b": {"engine": "paged", "kv_budget_tokens": 2048, "speculative": draft}}})
    exp = Experiment(cfg, progress=False)
    drafts = [p.arm.sections["speculative"].proposer(p.lm).draft_lm for p in exp.plans.values()]
    assert drafts[0] is drafts[1] and drafts[0] is not exp.plans["a"].lm     # loaded once, beside the target
