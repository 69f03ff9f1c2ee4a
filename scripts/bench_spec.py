"""Speculative decoding vs plain decoding, and vs transformers' own assisted generation (one process).

Regime: batch 1, greedy, offline, the target in float32 on the CPU (SmolLM2-135M-Instruct by default;
Qwen2.5-Coder-1.5B with the 0.5B as its draft for issue 20), on the golden set's extraction and
input-grounded categories, whose answers copy the prompt. Every method runs every prompt, round
robin (prompt 1 through all methods, then prompt 2, ...), so load drift on a shared machine hits all
of them alike. Speed is output tokens per wall second and per process CPU second (steadier under
contention with one thread). Then the batch phase: the prompts in groups of --batch, all at once on
the paged engine, with and without speculation (the draft model drafts for the whole batch in one
forward per position).

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
import time

import torch

from testbed.config import ModelSpec
from testbed.drive import run_all
from testbed.engines.hf import HFEngine, HFOptions
from testbed.engines.paged.engine import PagedEngine, PagedOptions
from testbed.models import load_model
from testbed.request import Request
from testbed.speculative.config import SpeculativeConfig
from testbed.speculative.draft_model import DraftModel
from testbed.speculative.self_speculative import draft_depth, truncated_model
from testbed.workloads.datasets import load_dataset
from testbed.workloads.prompts import build_messages, render_prompt

CATEGORIES = ["lookup", "clause_extraction", "json_extraction", "grounded_output"]


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--draft", default=None, help="draft model for the draft-model methods (default: the target)")
    ap.add_argument("--draft-dtype", default="auto", help="the draft's dtype (bfloat16: cheaper; the target verifies)")
    ap.add_argument("--categories", default=",".join(CATEGORIES), help="golden categories, interleaved")
    ap.add_argument("--limit", type=int, default=8, help="prompts (interleaved across the categories)")
    ap.add_argument("--max-new-tokens", type=int, default=64)
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


def prompts(lm, limit: int, categories: list[str]) -> list[tuple[str, list[int]]]:
    items = load_dataset("golden", categories, None)
    by_cat = {c: [it for it in items if it.category == c] for c in categories}
    mixed = [it for group in zip(*by_cat.values()) for it in group][:limit]
    return [(it.id, render_prompt(lm.tokenizer, build_messages(it, list(it.chunks)))[1]) for it in mixed]


class OurMethod:
    """A runner: prompt ids -> (output ids, request); its engine's stats accumulate over calls."""

    def __init__(self, lm, section: dict | None, paged: bool = False, draft_lm=None):
        self.lm = lm
        self.sections = {"speculative": SpeculativeConfig(**section)} if section else {}
        if draft_lm is not None:       # one loaded draft for every method (each would load its own)
            cfg = self.sections["speculative"]
            cfg._proposers[id(lm)] = DraftModel(cfg, lm, draft_lm=draft_lm)
        self.paged = paged
        self.reset()

    def reset(self) -> None:
        self.engine = None          # built at first use: only the methods that run allocate KV caches

    def new_engine(self):
        if self.paged:
            return PagedEngine(self.lm, PagedOptions(block_size=16, kv_budget_tokens=4096), self.sections)
        return HFEngine(self.lm, HFOptions(batch_size=1), self.sections)

    def __call__(self, ids: list[int], max_new: int):
        return self.batch([ids], max_new)[0]

    def batch(self, prompts: list[list[int]], max_new: int) -> list[tuple[list[int], Request]]:
        """All prompts at once (the paged engine batches them; hf runs batch_size 1)."""
        self.engine = self.engine or self.new_engine()
        now = time.perf_counter()
        reqs = [Request(id=f"b{i}", prompt_ids=ids, max_new_tokens=max_new, arrival_time=now,
                        eos_token_ids=self.lm.eos_token_ids) for i, ids in enumerate(prompts)]
        run_all(self.engine, reqs)
        return [(r.output_ids, r) for r in reqs]


def hf_method(lm, **kwargs):
    def go(ids, max_new):
        x = torch.tensor([ids], device=lm.model.device)
        with torch.inference_mode():
            out = lm.model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=max_new, do_sample=False,
                                    temperature=None, top_p=None, top_k=None, eos_token_id=list(lm.eos_token_ids),
                                    pad_token_id=lm.pad_token_id, **kwargs)
        return out[0, len(ids):].tolist(), None
    return go


def assistant(model, k: int):
    """A draft for transformers' assisted generation: fixed k, no confidence cut-off, its own generation config."""
    model.generation_config = copy.deepcopy(model.generation_config)
    model.generation_config.num_assistant_tokens = k
    model.generation_config.num_assistant_tokens_schedule = "constant"
    model.generation_config.assistant_confidence_threshold = 0.0
    return model


def methods(lm, draft_lm, a) -> dict:
    depth = draft_depth(a.self_layers, lm.model.config.num_hidden_layers)
    self_draft = assistant(truncated_model(lm.model, depth), a.self_k)
    hf_draft = assistant(copy.copy(draft_lm.model), a.draft_k)  # copy: its own generation config, shared weights
    draft = {"draft": {"id": draft_lm.spec_id, "dtype": a.draft_dtype}, "num_draft_tokens": a.draft_k}
    adaptive = {**draft, "adaptive": {"min": 2, "max": 10}}
    lookup = {**adaptive, "lookup": True, "ngram": 3, "ngram_min": a.ngram_min}
    pl = {"method": "prompt_lookup", "ngram": 3, "num_draft_tokens": a.k}
    tuned = {**pl, "ngram_min": a.ngram_min}
    return {
        "base": OurMethod(lm, None),
        "ours_pl": OurMethod(lm, pl),                                      # transformers' proposer: n-grams 3..1
        "ours_pl_min": OurMethod(lm, tuned),                               # no single-token matches
        "ours_pl_adaptive": OurMethod(lm, {**tuned, "num_draft_tokens": 4, "adaptive": {"max": 24}}),
        "paged_base": OurMethod(lm, None, paged=True),                     # the paged engine's own baseline
        "paged_pl": OurMethod(lm, pl, paged=True),
        "paged_pl_min": OurMethod(lm, tuned, paged=True),
        "hf_pl": hf_method(lm, prompt_lookup_num_tokens=a.k, max_matching_ngram_size=3),
        "ours_self": OurMethod(lm, {"method": "self_speculative", "layers": depth, "num_draft_tokens": a.self_k}),
        "ours_self_adaptive": OurMethod(lm, {"method": "self_speculative", "layers": depth,
                                              "num_draft_tokens": a.self_k, "adaptive": {"max": 8}}),
        "hf_self": hf_method(lm, assistant_model=self_draft, num_assistant_tokens=a.self_k,
                             num_assistant_tokens_schedule="constant", assistant_confidence_threshold=0.0),
        "ours_draft": OurMethod(lm, draft, draft_lm=draft_lm),                   # fixed k: hf_draft's k
        "ours_draft_adaptive": OurMethod(lm, adaptive, draft_lm=draft_lm),       # k from measured α and c
        "paged_draft": OurMethod(lm, adaptive, paged=True, draft_lm=draft_lm),
        "ours_draft_lookup": OurMethod(lm, lookup, draft_lm=draft_lm),           # the draft checks lookup's guess
        "paged_draft_lookup": OurMethod(lm, lookup, paged=True, draft_lm=draft_lm),
        "hf_draft": hf_method(lm, assistant_model=hf_draft, num_assistant_tokens=a.draft_k,
                              num_assistant_tokens_schedule="constant", assistant_confidence_threshold=0.0),
    }


def run(fns: dict, work: list, max_new: int, batch: int = 1) -> dict:
    """Every method on every group of `batch` prompts (round robin): wall, CPU, tokens, outputs, TPOTs."""
    res = {n: {"wall": 0.0, "cpu": 0.0, "tokens": 0, "outputs": {}, "tpot": []} for n in fns}
    for start in range(0, len(work), batch):
        group = work[start:start + batch]
        for name, fn in fns.items():
            w, c = time.perf_counter(), time.process_time()
            outs = fn.batch([ids for _, ids in group], max_new) if batch > 1 else [fn(group[0][1], max_new)]
            res[name]["wall"] += time.perf_counter() - w
            res[name]["cpu"] += time.process_time() - c
            for (pid, _), (out, req) in zip(group, outs):
                res[name]["tokens"] += len(out)
                res[name]["outputs"][pid] = out
                if req is not None and len(req.token_times) > 1:
                    res[name]["tpot"].append((req.token_times[-1] - req.token_times[0]) / (len(req.token_times) - 1))
    return res


def bound(alpha: float, c: float, k: float) -> float:
    """Expected speedup of speculative decoding (Leviathan et al.): (1−α^(k+1)) / ((1−α)(ck+1))."""
    gain = k + 1 if alpha >= 1 else (1 - alpha ** (k + 1)) / (1 - alpha)
    return gain / (c * k + 1)


def own_base(name: str) -> str:
    return "paged_base" if name.startswith("paged") else "base"


def card(fns: dict, res: dict, base_name: str = "base") -> dict:
    base = res[base_name]
    base_tpot = sum(base["tpot"]) / len(base["tpot"]) if base["tpot"] else None
    rows = {}
    for name, r in res.items():
        row = {"tok_s": r["tokens"] / r["wall"], "tok_per_cpu_s": r["tokens"] / r["cpu"],
               "match": sum(r["outputs"][p] == base["outputs"][p] for p in base["outputs"]) / len(base["outputs"])}
        row["speedup"] = row["tok_s"] / (base["tokens"] / base["wall"])
        own = res.get(own_base(name), base)        # speculation alone: against the same engine without it
        row["speedup_own"] = row["tok_s"] / (own["tokens"] / own["wall"])
        if r["tpot"] and own["tpot"]:              # decode only (prefill left out): TPOT ratio
            row["tpot_speedup"] = (sum(own["tpot"]) / len(own["tpot"])) / (sum(r["tpot"]) / len(r["tpot"]))
        row["speedup_cpu"] = row["tok_per_cpu_s"] / (base["tokens"] / base["cpu"])
        engine = getattr(fns[name], "engine", None)
        st = engine.stats() if engine is not None and name != base_name else {}
        if st.get("spec_num_draft_tokens") and base_tpot:
            alpha = st["spec_acceptance_rate"]
            k = st["spec_num_draft_tokens"] / st["spec_num_drafts"]
            # c: one draft position over one plain step; at batch > 1 over one verify step of the batch
            c = (st["spec_draft_time_s"] / st["spec_num_draft_tokens"]) / base_tpot if base_name == "base" \
                else st["spec_draft_cost_ratio"]
            row.update(alpha=alpha, c=c, k_mean=k, bound=bound(alpha, c, k),
                       mean_accepted_tokens=st["spec_mean_accepted_tokens"])
        rows[name] = row
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


def pick(fns: dict, names: str, always: set) -> dict:
    keep = always | set(filter(None, names.split(",")))
    keep |= {own_base(n) for n in keep}
    return {n: f for n, f in fns.items() if n in keep}


def measure(fns: dict, work: list, max_new: int, batch: int = 1) -> dict:
    run(fns, work[:1], 8, batch)                            # warm-up: every method once on one prompt, not timed
    for fn in fns.values():
        if isinstance(fn, OurMethod):
            fn.reset()
    return run(fns, work, max_new, batch)


def main() -> None:
    a = parse()
    torch.set_num_threads(a.threads)
    lm = load_model(ModelSpec(id=a.model, dtype=a.dtype), a.device)
    draft_lm = load_model(ModelSpec(id=a.draft, dtype=a.draft_dtype), a.device) if a.draft else lm
    work = prompts(lm, a.limit, a.categories.split(","))
    fns = methods(lm, draft_lm, a)
    solo = pick(fns, a.methods, {"base"}) if a.methods else fns
    rows = card(solo, measure(solo, work, a.max_new_tokens))
    where = torch.cuda.get_device_name(a.device) if a.device.startswith("cuda") else f"{a.threads} thread(s), CPU"
    model = f"{lm.model.config.num_hidden_layers}-layer {a.model} ({a.dtype})" + \
        (f", draft {a.draft} ({a.draft_dtype})" if a.draft else "")
    show(rows, f"speculative decoding, batch 1, greedy, {len(work)} golden prompts ({a.categories}), {model}, {where}")
    out = {"model": a.model, "draft": a.draft, "draft_dtype": a.draft_dtype, "prompts": len(work),
           "max_new_tokens": a.max_new_tokens, "threads": a.threads,
           "methods": {n: {k: round(v, 4) for k, v in r.items()} for n, r in rows.items()}}
    if a.batch_methods:
        batched = {n: f for n, f in pick(fns, a.batch_methods, {"paged_base"}).items() if isinstance(f, OurMethod)}
        brows = card(batched, measure(batched, work, a.max_new_tokens, a.batch), base_name="paged_base")
        show(brows, f"batch {a.batch} on the paged engine, the same prompts in groups of {a.batch}, {model}, {where}")
        out["batch"] = {"size": a.batch, "methods": {n: {k: round(v, 4) for k, v in r.items()} for n, r in brows.items()}}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
