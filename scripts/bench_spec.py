"""Speculative decoding vs plain decoding, and vs transformers' own assisted generation (one process).

Regime: batch 1, greedy, offline, the target in float32 on the CPU (SmolLM2-135M-Instruct by default;
Qwen2.5-Coder-1.5B with the 0.5B as its draft for issue 20), on the golden set's extraction and
input-grounded categories, whose answers copy the prompt. Our methods are arms of one testbed
experiment (`Experiment`, the measurement path of `testbed run`): interleaved in blocks of one
prompt (prompt 1 through every arm, the arm order rotated, then prompt 2, ...), so load drift on a
shared machine hits all of them alike, each arm warmed up by one untimed request; speed, match and
the speculative counters come from the run's summary. Speed is output tokens per wall second and per
process CPU second (steadier under contention with one thread). Then the batch phase, a second
experiment: the prompts in blocks of --batch, all at once on the paged engine, with and without
speculation (the draft model drafts for the whole batch in one forward per position).
Transformers' assisted generation is not a testbed engine: it runs after the experiment on the same
prompts, round robin, warmed up and timed the same way (wall and CPU seconds around each answer);
its "x base" is against the experiment's base arm, measured just before. Every prompt gets
--max-new-tokens as its budget (the golden grounded_output items' own longer budgets are replaced).

Ours: prompt lookup (fixed k: with transformers' n-gram sizes 3..1, and without single-token
matches, which are rarely accepted and make a step cost a k+1-token verify for ~1 token; adaptive;
and the same proposer batched on the paged engine), self-speculative (the first layers of the target),
and a draft model (--draft; without one the target drafts for itself: α = 1, c ≈ 1, so it measures
overhead), with fixed and adaptive k, on hf and paged. Theirs: `generate(prompt_lookup_num_tokens=k)`
and `generate(assistant_model=...)` with the same self-speculative draft and the same draft model and k.

For each speculative method it prints the acceptance α, the draft-cost ratio c (draft time per
draft token over the baseline's time per output token) and the bound (1−α^(k+1))/((1−α)(ck+1)),
so the gap between the implementation and its theory is visible; and whether its greedy tokens
equal the baseline's. The last stdout line is one JSON object.

    python scripts/bench_spec.py                           # 8 prompts, 64 new tokens
    python scripts/bench_spec.py --limit 3 --methods base,ours_pl,hf_pl
    python scripts/bench_spec.py --limit 8 --methods ours_pl,ours_pl_min,ours_pl_adaptive,hf_pl --threads 1
    python scripts/bench_spec.py --model qwen2.5-coder-1.5b --draft qwen2.5-coder-0.5b --draft-dtype bfloat16 \
        --categories grounded_output,json_extraction --limit 4 --max-new-tokens 48 \
        --methods ours_draft,ours_draft_adaptive,ours_draft_lookup,paged_draft,hf_draft,ours_pl_min \
        --batch-methods paged_base,paged_draft,paged_draft_lookup
"""
import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import torch

from testbed.config import ModelSpec, validate
from testbed.metrics.cpu import cpu_seconds
from testbed.models import load_cached
from testbed.plugins import load_plugins
from testbed.runner import WARMUP_NEW_TOKENS, Experiment
from testbed.speculative.self_speculative import draft_depth, truncated_model
from testbed.workloads.datasets import GOLDEN_DIR, load_dataset

CATEGORIES = ["lookup", "clause_extraction", "json_extraction", "grounded_output"]
PEERS = ("hf_pl", "hf_self", "hf_draft")      # transformers' generate; every other method is a testbed arm


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--draft", default=None, help="draft model for the draft-model methods (default: the target)")
    ap.add_argument("--draft-dtype", default="auto", help="the draft's dtype (bfloat16: cheaper; the target verifies)")
    ap.add_argument("--categories", default=",".join(CATEGORIES), help="golden categories, interleaved")
    ap.add_argument("--limit", type=int, default=8, help="prompts (interleaved across the categories)")
    ap.add_argument("--max-new-tokens", type=int, default=64, help="every prompt's budget")
    ap.add_argument("--k", type=int, default=10, help="draft tokens for prompt lookup")
    ap.add_argument("--ngram-min", type=int, default=2, help="shortest n-gram the tuned prompt lookup arms match")
    ap.add_argument("--self-layers", type=float, default=0.6, help="self-speculative depth: share of layers")
    ap.add_argument("--self-k", type=int, default=2)
    ap.add_argument("--draft-k", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cuda on a GPU (wall-time ratios there; CPU-time ratios mean little)")
    ap.add_argument("--dtype", default="auto", help="float32 keeps greedy agreement exact; bfloat16 may part early")
    ap.add_argument("--methods", default="", help="comma-separated subset of the method names (default all)")
    ap.add_argument("--batch", type=int, default=4, help="requests at once in the batch phase")
    ap.add_argument("--batch-methods", default="", help="paged methods for the batch phase (none by default), "
                    "e.g. paged_base,paged_draft")
    return ap.parse_args()


def arms(a) -> dict[str, dict]:
    """Our methods as testbed arms: hf at batch 1 or paged, with or without a speculative section."""
    hf = lambda spec=None: {"engine": "hf", "batch_size": 1, **({"speculative": spec} if spec else {})}  # noqa: E731
    paged = lambda spec=None: {"engine": "paged", "block_size": 16, "kv_budget_tokens": 4096,          # noqa: E731
                               **({"speculative": spec} if spec else {})}
    draft = {"method": "draft_model", "num_draft_tokens": a.draft_k,   # without --draft the target drafts itself
             "draft": {"id": a.draft or a.model, "dtype": a.draft_dtype if a.draft else a.dtype}}
    adaptive = {**draft, "adaptive": {"min": 2, "max": 10}}
    lookup = {**adaptive, "lookup": True, "ngram": 3, "ngram_min": a.ngram_min}
    pl = {"method": "prompt_lookup", "ngram": 3, "num_draft_tokens": a.k}
    tuned = {**pl, "ngram_min": a.ngram_min}
    selfs = {"method": "self_speculative", "layers": a.self_layers, "num_draft_tokens": a.self_k}
    return {
        "base": hf(), "paged_base": paged(),               # each engine's own baseline
        "ours_pl": hf(pl),                                 # transformers' proposer: n-grams 3..1
        "ours_pl_min": hf(tuned),                          # no single-token matches
        "ours_pl_adaptive": hf({**tuned, "num_draft_tokens": 4, "adaptive": {"max": 24}}),
        "paged_pl": paged(pl), "paged_pl_min": paged(tuned),
        "ours_self": hf(selfs), "ours_self_adaptive": hf({**selfs, "adaptive": {"max": 8}}),
        "ours_draft": hf(draft),                           # fixed k: hf_draft's k
        "ours_draft_adaptive": hf(adaptive),               # k from measured α and c
        "paged_draft": paged(adaptive),
        "ours_draft_lookup": hf(lookup),                   # the draft checks lookup's guess
        "paged_draft_lookup": paged(lookup),
    }


def write_prompts(a, path: Path) -> None:
    """The golden items this bench runs, as a JSONL dataset, each with --max-new-tokens as its budget
    (grounded_output items carry longer budgets of their own, which the runner would honour)."""
    cats = a.categories.split(",")
    raw = {r["id"]: r for c in cats for r in map(json.loads, (GOLDEN_DIR / f"{c}.jsonl").read_text().splitlines())}
    items = load_dataset("golden", cats, a.limit)        # interleaved across the categories
    path.write_text("".join(json.dumps({**raw[it.id], "max_new_tokens": a.max_new_tokens}) + "\n" for it in items))


def experiment(a, prompts: Path, arm_set: dict[str, dict], baseline: str, block: int) -> Experiment:
    """Run the arms on the prompts, interleaved in blocks of `block` prompts; the run dir is thrown away."""
    cfg = {"name": "bench_spec", "model": {"id": a.model, "dtype": a.dtype}, "device": a.device, "threads": a.threads,
           "workload": {"dataset": str(prompts), "max_new_tokens": a.max_new_tokens, "warmup": 1,
                        "order": "interleaved", "block_size": block},
           "baseline": baseline, "arms": arm_set}
    exp = Experiment(validate(cfg), progress=False)
    with tempfile.TemporaryDirectory() as out:
        exp.run(out)
    return exp


def assistant(model, k: int):
    """A draft for transformers' assisted generation: fixed k, no confidence cut-off, its own generation config."""
    model.generation_config = copy.deepcopy(model.generation_config)
    model.generation_config.num_assistant_tokens = k
    model.generation_config.num_assistant_tokens_schedule = "constant"
    model.generation_config.assistant_confidence_threshold = 0.0
    return model


def peers(lm, models: dict, a, names: set[str]) -> dict[str, dict]:
    """Transformers' own methods with our proposers' settings, as generate kwargs: prompt lookup, the same
    self-speculative depth, the same draft model and k. Only the chosen ones are built; the draft is the
    experiment's loaded copy (`models`, the runner's cache) where an arm already loaded it."""
    fixed = {"num_assistant_tokens_schedule": "constant", "assistant_confidence_threshold": 0.0}
    out = {}
    if "hf_pl" in names:
        out["hf_pl"] = {"prompt_lookup_num_tokens": a.k, "max_matching_ngram_size": 3}
    if "hf_self" in names:
        depth = draft_depth(a.self_layers, lm.model.config.num_hidden_layers)
        out["hf_self"] = {"assistant_model": assistant(truncated_model(lm.model, depth), a.self_k),
                          "num_assistant_tokens": a.self_k, **fixed}
    if "hf_draft" in names:      # a shallow copy: its own generation config, the shared weights; without --draft,
        # the target drafts itself
        draft = load_cached(models, ModelSpec(id=a.draft, dtype=a.draft_dtype), lm.device) if a.draft else lm
        draft = copy.copy(draft.model)
        out["hf_draft"] = {"assistant_model": assistant(draft, a.draft_k), "num_assistant_tokens": a.draft_k, **fixed}
    return out


def generate(lm, ids: list[int], max_new: int, kwargs: dict) -> list[int]:
    """Greedy transformers generate at batch 1: the new tokens."""
    x = torch.tensor([ids], device=lm.model.device)
    with torch.inference_mode():
        out = lm.model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=max_new, do_sample=False,
                                temperature=None, top_p=None, top_k=None, eos_token_id=list(lm.eos_token_ids),
                                pad_token_id=lm.pad_token_id, **kwargs)
    return out[0, len(ids):].tolist()


def run_peers(exp: Experiment, fns: dict) -> dict:
    """Each peer on the experiment's requests, round robin, after one untimed answer each: raw figures per peer."""
    plan = exp.plans["base"]
    reqs = {it.id: plan.make_request(it, 0.0) for it in exp.items}
    for kw in fns.values():
        generate(plan.lm, next(iter(reqs.values())).prompt_ids, WARMUP_NEW_TOKENS, kw)
    res = {n: {"wall": 0.0, "cpu": 0.0, "tokens": 0, "outputs": {}} for n in fns}
    for pid, req in reqs.items():
        for name, kw in fns.items():
            w, c = time.perf_counter(), cpu_seconds()
            out = generate(plan.lm, req.prompt_ids, req.max_new_tokens, kw)
            res[name]["wall"] += time.perf_counter() - w
            res[name]["cpu"] += cpu_seconds() - c
            res[name]["tokens"] += len(out)
            res[name]["outputs"][pid] = out
    return res


def bound(alpha: float, c: float, k: float) -> float:
    """Expected speedup of speculative decoding (Leviathan et al.): (1−α^(k+1)) / ((1−α)(ck+1))."""
    gain = k + 1 if alpha >= 1 else (1 - alpha ** (k + 1)) / (1 - alpha)
    return gain / (c * k + 1)


def own_base(name: str) -> str:
    return "paged_base" if name.startswith("paged") else "base"


def card(exp: Experiment, base_name: str) -> dict:
    """One row per arm from the run's summary: speed against the baseline and the arm's own engine, match, α, c."""
    arms = exp.summary["arms"]
    base = arms[base_name]
    rows = {}
    for name, m in arms.items():
        own = arms.get(own_base(name), base)         # speculation alone: against the same engine without it
        row = {"tok_s": m["output_throughput"], "tok_per_cpu_s": 1 / m["cpu_s_per_output_token"],
               "match": m.get("match_rate_vs_baseline", 1.0)}
        row["speedup"] = row["tok_s"] / base["output_throughput"]
        row["speedup_own"] = row["tok_s"] / own["output_throughput"]
        if m.get("tpot_ms_mean") and own.get("tpot_ms_mean"):     # decode only (prefill left out): TPOT ratio
            row["tpot_speedup"] = own["tpot_ms_mean"] / m["tpot_ms_mean"]
        row["speedup_cpu"] = base["cpu_s_per_output_token"] / m["cpu_s_per_output_token"]
        if m.get("spec_num_draft_tokens") and base.get("tpot_ms_mean"):
            alpha, k = m["spec_acceptance_rate"], m["spec_num_draft_tokens"] / m["spec_num_drafts"]
            # c: one draft position over one plain step; at batch > 1 over one verify step of the batch
            c = (m["spec_draft_time_s"] / m["spec_num_draft_tokens"]) / (base["tpot_ms_mean"] / 1000) \
                if base_name == "base" else m["spec_draft_cost_ratio"]
            row.update(alpha=alpha, c=c, k_mean=k, bound=bound(alpha, c, k),
                       mean_accepted_tokens=m["spec_mean_accepted_tokens"])
        rows[name] = row
    return rows


def peer_rows(res: dict, exp: Experiment) -> dict:
    """Transformers' rows against the experiment's base arm (tokens per wall and CPU second, match)."""
    base = exp.summary["arms"]["base"]
    base_out = {r["item_id"]: r["output_ids"] for r in exp.records if r["arm"] == "base"}
    rows = {}
    for name, r in res.items():
        tok_s, per_cpu = r["tokens"] / r["wall"], r["tokens"] / r["cpu"]
        rows[name] = {"tok_s": tok_s, "tok_per_cpu_s": per_cpu,
                      "match": sum(r["outputs"][p] == o for p, o in base_out.items()) / len(base_out),
                      "speedup": tok_s / base["output_throughput"], "speedup_own": tok_s / base["output_throughput"],
                      "speedup_cpu": per_cpu * base["cpu_s_per_output_token"]}
    return rows


def show(rows: dict, title: str) -> None:
    print(f"\n{title}")
    print("x base: output tok/s over the phase's plain decoding; x own: over the same engine without speculation "
          "(paged_* over paged_base); tpot x: decode-only (prefill left out)")
    print(f"{'method':<20}{'tok/s':>8}{'x base':>8}{'x own':>7}{'tpot x':>8}{'x (cpu)':>8}{'match':>7}{'α':>7}{'c':>7}"
          f"{'k':>6}{'bound':>7}")
    for name, r in rows.items():
        opt = lambda key, f="{:.2f}": f.format(r[key]) if key in r else "-"   # noqa: E731
        print(f"{name:<20}{r['tok_s']:>8.1f}{r['speedup']:>8.2f}{r['speedup_own']:>7.2f}{opt('tpot_speedup'):>8}"
              f"{r['speedup_cpu']:>8.2f}{r['match']:>7.0%}"
              f"{opt('alpha'):>7}{opt('c'):>7}{opt('k_mean', '{:.1f}'):>6}{opt('bound'):>7}")


def pick(names: str, known: list[str], always: set) -> list[str]:
    keep = always | set(filter(None, names.split(","))) if names else set(known)
    keep |= {own_base(n) for n in keep if n not in PEERS}
    return [n for n in known if n in keep]


def bench(a, tmp: Path) -> dict:
    """Batch 1 (our arms, then transformers' peers) and, with --batch-methods, the batch phase: the JSON result."""
    ours = arms(a)
    chosen = pick(a.methods, list(ours) + list(PEERS), {"base"})
    prompts = tmp / "prompts.jsonl"
    write_prompts(a, prompts)
    exp = experiment(a, prompts, {n: ours[n] for n in chosen if n in ours}, "base", 1)
    lm = exp.plans["base"].lm
    models = exp.plans["base"].shared["models"]
    rows = {**card(exp, "base"), **peer_rows(run_peers(exp, peers(lm, models, a, set(chosen))), exp)}
    where = torch.cuda.get_device_name(a.device) if a.device.startswith("cuda") else f"{a.threads} thread(s), CPU"
    model = f"{lm.model.config.num_hidden_layers}-layer {a.model} ({a.dtype})" + \
        (f", draft {a.draft} ({a.draft_dtype})" if a.draft else "")
    show(rows, f"speculative decoding, batch 1, greedy, {len(exp.items)} golden prompts ({a.categories}), {model}, "
               f"{where}")
    rounded = lambda rs: {n: {k: round(v, 4) for k, v in r.items()} for n, r in rs.items()}   # noqa: E731
    out = {"model": a.model, "draft": a.draft, "draft_dtype": a.draft_dtype, "prompts": len(exp.items),
           "max_new_tokens": a.max_new_tokens, "threads": a.threads, "methods": rounded(rows)}
    if a.batch_methods:
        batched = [n for n in pick(a.batch_methods, list(ours), {"paged_base"}) if n.startswith("paged")]
        brows = card(experiment(a, prompts, {n: ours[n] for n in batched}, "paged_base", a.batch), "paged_base")
        show(brows, f"batch {a.batch} on the paged engine, the same prompts in groups of {a.batch}, {model}, {where}")
        out["batch"] = {"size": a.batch, "methods": rounded(brows)}
    return out


def main() -> None:
    a = parse()
    load_plugins()      # engines and sections registered before the configs are validated
    with tempfile.TemporaryDirectory() as tmp:
        out = bench(a, Path(tmp))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
