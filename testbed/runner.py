"""Run an experiment: every arm on the same requests, baseline first, records written as they finish.

    run_dir = run_experiment(load_config("configs/quickstart.yaml"))

Everything that can be checked (config, dataset, models, context length, each engine's and
section's `check_arm`) is checked before the run directory exists, so a bad input never leaves
a half-written result behind. A Ctrl-C keeps requests.jsonl and writes a summary marked incomplete.

With `arrival: {kind: sweep, rates: [...]}` every arm runs once per rate (ascending, all arms at
one rate before the next rate); request ids get `#q<rate>` and records a `rate`. The comparison
rows pool every rate (tokens over the summed wall time, as repeats do); summary["sweep"] holds
the per-rate curves.

The order of the passes (testbed/schedule.py): `workload.order: interleaved` alternates the arms in
blocks of items (per repeat and rate when arrivals drive the load; probe by probe, every search in
lockstep, for an SLO search), so the machine's drift lands on every arm; summary["drift"] and each
arm's paired block ratio show what drift there was.
"""
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from testbed.arm import ArmPlan
from testbed.arm_setup import arm_plans, check_arms, unavailable_arms
from testbed.capacity import Searches, attainment, capacity_plot
from testbed.config import ExperimentConfig
from testbed.diagnose import diagnose_experiment
from testbed.drive import drive, frozen_gc, run_all
from testbed.env import collect_env
from testbed.errors import UserError
from testbed.metrics.cpu import cpu_seconds
from testbed.interrupt import sigterm_as_interrupt
from testbed.metrics.footprint import check_coexist
from testbed.metrics.match import compare, rematch
from testbed.metrics.memory import MemoryTracker
from testbed.models import pick_device
from testbed.plugins import load_plugins
from testbed.records import request_record
from testbed.report.writer import RunWriter, create_run_dir
from testbed.request import Request
from testbed.run_summary import summarize_run, trusted_models
from testbed.schedule import Pass, arm_width, auto_block_size, order_info, plan_passes, search_round
from testbed.workloads.arrival import arrival_offsets
from testbed.workloads.datasets import load_dataset
from testbed.workloads.sweep import rate_label


@dataclass
class ArmRun:
    """One arm's pass over the workload at one repeat and one offered rate (None: not a sweep)."""
    repeat: int
    rate: float | None
    records: list[dict]
    wall_s: float
    engine_stats: dict
    memory: dict
    block: int = 0           # the block of items (offline) or the rate index it ran
    started: float = 0.0     # perf_counter at its start: the run order, for the drift check

WARMUP_NEW_TOKENS = 16    # a warm-up answer's cap (spec_decode's CPU fallback spent ~2 of its 15 minutes on full ones)


class Experiment:
    def __init__(self, cfg: ExperimentConfig, limit: int | None = None, progress: bool = True,
                 check_only: bool = False):
        """check_only (`testbed validate`): every pre-run check, but no section work that runs requests."""
        load_plugins()
        self.cfg = cfg
        self.progress = progress
        self.check_only = check_only
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        w = cfg.workload
        self.items = load_dataset(w.dataset, w.categories, limit or w.limit, split=w.split,
                                  random=w.random, seed=w.seed)
        self.device = pick_device(cfg.device)
        self.skipped = unavailable_arms(cfg)
        self.arm_names = [a for a in [cfg.baseline] + [a for a in cfg.arms if a != cfg.baseline] if a not in self.skipped]
        self.schedule = w.arrival.schedule(len(self.items), w.duration_s)   # refuses a pass over a day
        self.plans = arm_plans(cfg, self.arm_names, self.items, self.device, progress, check_only)
        check_arms(self.plans, self.items)     # testbed/arm_setup.py: every check before the run directory
        self.passes = self._passes()
        self.records: list[dict] = []
        self.runs: dict[str, list[ArmRun]] = {}
        self.capacity: dict[str, list[dict]] = {}      # slo_search: each arm's search per repeat
        self.baseline_outputs: dict[str, list[int]] = {}
        self._live: dict[str, Any] = {}       # each arm's engine for its current pass

    def _passes(self) -> list[Pass]:
        """Every pass in run order; interleaving holds every arm's engine, so it first checks they fit."""
        w = self.cfg.workload
        block = w.block_size or auto_block_size(len(self.items), [arm_width(p.arm.options) for p in self.plans.values()])
        if w.order == "interleaved" and len(self.plans) > 1:
            check_coexist(self.plans, self.items, self.device)
        self.order = order_info(w.order, self.schedule, block, len(self.items), self.cfg.repeats)
        return plan_passes(self.arm_names, self.items, self.schedule, self.cfg.repeats, w.order, block)

    def run(self, out_dir: str | Path | None = None) -> Path:
        run_dir = create_run_dir(out_dir or self.cfg.output_dir, self.cfg.name)
        self.writer = RunWriter(run_dir)
        self.writer.write_config(self.cfg.model_dump(mode="json", exclude_none=True))
        self.writer.write_env({**collect_env(), "device": str(self.device), "threads": torch.get_num_threads(),
                               "threads_from": "config" if self.cfg.threads else "torch default (one per core)",
                               "trust_remote_code": trusted_models(self.cfg, self.arm_names)})
        incomplete = False
        restore_sigterm = sigterm_as_interrupt()      # SIGTERM, like Ctrl-C, keeps what was measured
        try:
            if self.cfg.workload.arrival.kind == "slo_search":
                self._search()
            else:
                self._run_passes()
        except KeyboardInterrupt:
            incomplete = True
            print("\n[testbed] interrupted: keeping the requests measured so far", flush=True)
        except UserError as e:      # found only mid-run (a router with too few labels, vLLM crashed): keep what ran
            print(f"\n[testbed] stopped: {e.message}; keeping the requests measured so far in {run_dir}", flush=True)
            self._finish(True)
            raise
        finally:
            self.close()
            restore_sigterm()
        self._finish(incomplete)
        return run_dir

    def _run_passes(self) -> None:
        last = {p.arm: i for i, p in enumerate(self.passes)}
        one_at_a_time = self.cfg.workload.order == "sequential"
        for i, p in enumerate(self.passes):
            self._run_arm(p.arm, p.repeat, p.rate, p.arrival, p)
            switch = i + 1 < len(self.passes) and self.passes[i + 1].arm != p.arm
            # free an engine not needed again; sequential frees it whenever another arm comes next, so with
            # repeats or rates too only one arm's KV is ever held (what the coexistence error promises)
            if last[p.arm] == i or (one_at_a_time and switch):
                self.plans[p.arm].close()
                self._live.pop(p.arm, None)

    def close(self) -> None:
        """Release every arm's engine (vLLM's worker processes, caches)."""
        for plan in self.plans.values():
            plan.close()

    def _search(self) -> None:
        """Per arm and repeat, bisect the offered rate for the highest that meets the SLOs (testbed.capacity).
        Interleaved runs every (arm, repeat) search in lockstep, one probe each per round in rotated order,
        so machine drift over the run lands on every search alike (a search adapts to its own results, so
        it cannot be cut into blocks); sequential runs one search after another, one engine at a time."""
        a = self.cfg.workload.arrival
        low, high = (float(r) for r in a.rates)
        keys = [(name, r) for r in range(self.cfg.repeats) for name in self.arm_names]
        search = Searches(keys, low, high, a.steps, a.target)
        try:
            if self.cfg.workload.order == "sequential":     # one arm's KV at a time, as _run_passes promises
                search.one_by_one(self._probe, lambda key: self.plans[key[0]].close())
            else:
                search.lockstep(self._probe, lambda k: search_round(self.arm_names, self.cfg.repeats, k))
        finally:        # searches that finished keep their answer, even when the run stops early
            for (name, r), entry in search.entries().items():
                self.capacity.setdefault(name, []).append({**entry, "repeat": r})

    def _probe(self, key: tuple[str, int], rate: float) -> float:
        """One Poisson run of the (arm, repeat) at `rate`; the share of its requests that met every SLO."""
        (name, repeat), a = key, self.cfg.workload.arrival
        arrival = {"kind": "poisson", "rate": rate, "burstiness": a.burstiness, "max_concurrency": a.max_concurrency}
        self._run_arm(name, repeat, rate, arrival, Pass(name, repeat, rate, arrival, 0, self.items))
        return attainment(self.runs[name][-1].records, self.cfg.slo)

    def _run_arm(self, name: str, repeat: int, rate: float | None, arrival: dict, p: Pass) -> None:
        plan = self.plans[name]
        if p.first:     # one warm-up per (repeat, rate) pass, before the arm's first block
            self._warm_up(plan, first_run=name not in self.runs)
        # a pass's blocks share one engine, so its counters (KV waste, acceptance) cover the whole pass
        engine = self._live[name] = plan.new_engine() if p.first else self._live[name]
        seed = self.cfg.workload.seed
        offsets = arrival_offsets(arrival["kind"], len(p.items), arrival.get("rate"),
                                  arrival.get("burstiness", 1.0), seed)
        records: list[dict] = []
        by_id = {self._rid(it, repeat, rate): it for it in p.items}
        desc = name if rate is None else f"{name} @ {rate_label(rate)} req/s"
        bar = tqdm(total=len(p.items), desc=desc, unit="req", disable=not self.progress, leave=True)

        def make(item, arrival_time):
            return plan.make_request(item, arrival_time, self._rid(item, repeat, rate))

        def finished(req: Request):
            rec = self._record(name, repeat, req, by_id[req.id], t0_box[0])
            rec["block"] = p.block      # records time from their block's start: a rebuilt summary needs the pass
            if rate is not None:
                rec["rate"] = rate_label(rate)
            records.append(rec)
            self.writer.append_record(rec)
            bar.update(1)

        t0_box = [time.perf_counter()]
        # frozen_gc: no full-heap GC pause in the timed run
        with MemoryTracker(self.device, engine.memory_sample_s) as mem, frozen_gc():
            try:
                cpu0 = cpu_seconds()
                t0_box[0] = time.perf_counter()
                drive(engine, p.items, make, offsets, arrival.get("n"), finished,
                      arrival.get("max_concurrency"), self.cfg.workload.duration_s)
            finally:
                wall = time.perf_counter() - t0_box[0]
                bar.close()
                self.records += records
                stats = engine.stats()
                if self.cfg.workload.duration_s is not None:      # requests left unsent when time ran out
                    stats["n_unsent"] = len(p.items) - len(records)
                self.runs.setdefault(name, []).append(ArmRun(repeat, rate, records, wall, stats,
                                                             {**mem.as_metrics(), "cpu_s": cpu_seconds() - cpu0},
                                                             p.block, t0_box[0]))

    def _warm_up(self, plan: ArmPlan, first_run: bool) -> None:
        """Untimed answers before an arm's timed run. 'all' warms every sequence length once, so only
        an arm's first run needs it (its later rates and repeats reuse the warmed kernels)."""
        n = warmup_count(self.cfg.workload.warmup, self.device, len(self.items), first_run)
        if n:     # on the arm's own engine, which stays loaded for its timed runs (renewed, not rebuilt)
            reqs = [plan.make_request(it, time.perf_counter(), f"warmup-{it.id}") for it in self.items[:n]]
            for r in reqs:      # the prompt's full prefill, then a few decode steps: more would repeat them
                r.max_new_tokens = min(r.max_new_tokens, WARMUP_NEW_TOKENS)
            run_all(plan.new_engine(), reqs)

    def _rid(self, item, repeat: int, rate: float | None = None) -> str:
        rid = item.id if self.cfg.repeats == 1 else f"{item.id}#r{repeat}"
        return rid if rate is None else f"{rid}#q{rate_label(rate)}"

    def _record(self, arm: str, repeat: int, req: Request, item, t0: float) -> dict:
        plan = self.plans[arm]
        rec = request_record(arm, repeat, req, item, t0, plan.lm_for(req))   # a routed arm: the tier that answered
        rec.update(self._match(arm, req))
        rec.update(plan.record_fields(req))     # routed arms: route, cost_usd
        rec["stats"] = req.stats
        return rec

    def _match(self, arm: str, req: Request) -> dict:
        if arm == self.cfg.baseline:
            self.baseline_outputs[req.id] = req.output_ids
            return compare(None, req.output_ids)
        return compare(self.baseline_outputs.get(req.id), req.output_ids)

    def _finish(self, incomplete: bool) -> dict:
        if rematch(self.records, self.cfg.baseline, self.baseline_outputs):   # rotated blocks ran before the baseline's
            self.writer.rewrite_records(self.records)
        self.summary = summarize_run(self, incomplete)
        for arm, searches in self.capacity.items():
            capacity_plot(arm, searches[-1], self.writer.run_dir / "plots" / f"capacity_{arm}.png")
        self.summary["diagnosis"] = diagnose_experiment(self, probe=not incomplete)   # Ctrl-C: no probes
        self.writer.write_summary(self.summary)
        self.writer.write_report(self.summary, self.records)
        return self.summary


def warmup_count(warmup: int | str, device: Any, n_items: int, first_run: bool) -> int:
    """Untimed answers before an arm's pass: `workload.warmup` ('auto': 'all' on CUDA, else 1; 'all': every
    item before the arm's first pass, 1 before its later rates and repeats)."""
    if warmup == "auto":
        warmup = "all" if str(device).startswith("cuda") else 1
    return (n_items if first_run else 1) if warmup == "all" else warmup


def run_experiment(cfg: ExperimentConfig, out_dir=None, limit=None, progress=True) -> tuple[Path, dict]:
    exp = Experiment(cfg, limit=limit, progress=progress)
    run_dir = exp.run(out_dir)
    return run_dir, exp.summary
