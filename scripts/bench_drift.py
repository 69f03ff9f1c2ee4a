"""Machine drift vs run order: two identical arms, a CPU-heavy background job that starts halfway.

Regime: two arms with the same engine, model and options (hf, batch 1, greedy, ignore_eos so every
request makes the same number of tokens), the golden prompts, torch on `--threads` threads. When half
of the run's passes are done, a bounded busy-loop subprocess (one core, `--busy-s` seconds at most)
starts and runs until the run ends, as another job on a shared machine would. The same run goes once
`sequential` (baseline's blocks, then the other arm's: the background lands on the second arm only)
and once `interleaved` (blocks alternate ABBA: it lands on both). Identical arms should read x1.00.

    flock -x /tmp/cpu.lock python scripts/bench_drift.py --limit 16 --max-new-tokens 24 --block-size 1

With `--overhead CONFIG` it instead measures what cutting a config into interleaved blocks costs: the
same config (tiny model unless --model) run as one block per arm (the old order) and interleaved with
the default blocks, wall and CPU time of the passes each (up to the summary), `--rounds` rounds in ABBA
order; the ratio interleaved / one block pooled and per round.

Prints a card, then one line of JSON. Goal: interleaved ratio within 1.00 +- 0.05, its CI holding 1.0.
"""
import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

from testbed.config import load_config, validate
from testbed.diagnose import run as diagnose_run
from testbed.plugins import load_plugins
from testbed.runner import Experiment

BUSY = "import time\nend = time.time() + {s}\nwhile time.time() < end:\n    pass\n"


def config(model_id: str, dataset: str, limit: int, max_new: int, threads: int, order: str, block: int) -> dict:
    arm = {"engine": "hf", "batch_size": 1}
    return {"name": f"drift-{order}", "model": {"id": model_id}, "device": "cpu", "threads": threads,
            "workload": {"dataset": dataset, "limit": limit, "max_new_tokens": max_new, "warmup": 1,
                         "ignore_eos": True, "order": order, "block_size": block},
            "baseline": "a", "arms": {"a": dict(arm), "b": dict(arm)}}


class HalfwayLoad(Experiment):
    """Starts the busy loop once half of the passes have run; ends it with the run."""

    busy_s = 300.0
    busy: subprocess.Popen | None = None

    def _run_arm(self, name, repeat, rate, arrival, p):
        super()._run_arm(name, repeat, rate, arrival, p)
        done = sum(len(runs) for runs in self.runs.values())
        if self.busy is None and done >= len(self.passes) / 2:
            self.busy = subprocess.Popen([sys.executable, "-c", BUSY.format(s=self.busy_s)])
            self.busy_started_at = done

    def close(self):
        if self.busy is not None and self.busy.poll() is None:
            self.busy.terminate()
            self.busy.wait()
        super().close()


class LoopTimer(Experiment):
    """Times the passes (warm-ups included) up to the summary: diagnosis and report writing are left out,
    as the order does not change them."""

    def run(self, out_dir=None):
        self.t_start, self.cpu_start = time.perf_counter(), cpu_s()
        return super().run(out_dir)

    def _finish(self, incomplete):
        self.loop_s, self.loop_cpu_s = time.perf_counter() - self.t_start, cpu_s() - self.cpu_start
        return super()._finish(incomplete)


def stop_if_cut(exp: Experiment) -> None:
    """The runner turns SIGTERM (timeout) into an interrupt that ends one run and keeps it; stop the benchmark
    there, rather than count a cut run and start the next."""
    if exp.summary.get("incomplete"):
        sys.exit("[bench_drift] interrupted: stopping")


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def drift_run(args, order: str, out: str) -> dict:
    load_plugins()      # engines and sections registered before the config is validated
    exp = HalfwayLoad(validate(config(args.model, args.dataset, args.limit, args.max_new_tokens, args.threads, order,
                                      args.block_size)), progress=False)
    exp.busy_s = args.busy_s
    t0, c0 = time.perf_counter(), cpu_s()
    exp.run(out)
    stop_if_cut(exp)
    b, drift = exp.summary["arms"]["b"], exp.summary.get("drift", {})
    return {"order": order, "wall_s": time.perf_counter() - t0, "cpu_s": cpu_s() - c0,
            "ratio_pooled": b["output_throughput_vs_baseline"],
            "ratio_block_median": b.get("output_throughput_block_ratio"),
            "ci": [b.get("output_throughput_block_ratio_ci_low"), b.get("output_throughput_block_ratio_ci_high")],
            "baseline_moved": drift.get("moved"), "drift_warning": drift.get("warning"),
            "busy_after_passes": f"{exp.busy_started_at}/{len(exp.passes)}"}


def paired_ratio(times: dict[str, list[float]]) -> dict:
    """Interleaved over one block per arm: the two sums' ratio, and each round's own ratio (its spread)."""
    rounds = [i / o for i, o in zip(times["interleaved"], times["one_block"])]
    return {"pooled": sum(times["interleaved"]) / sum(times["one_block"]), "per_round": rounds,
            "min": min(rounds), "max": max(rounds)}


def overhead(args, out: str) -> dict:
    """Wall time of CONFIG's passes as one block per arm (sequential) vs interleaved default blocks."""
    model = [f"model.id={args.model}"] if args.model else ["model.id=random:tiny-llama"]
    load_plugins()      # engines and sections registered before the config is validated
    base = load_config(args.overhead, overrides=model + ["workload.warmup=1"], device="cpu")
    n = min(args.limit, base.workload.limit or args.limit)
    variants = {"one_block": [f"workload.block_size={n}", "workload.order=sequential"],
                "interleaved": ["workload.order=interleaved"]}
    walls: dict[str, list[float]] = {k: [] for k in variants}
    cpus: dict[str, list[float]] = {k: [] for k in variants}
    peaks: dict[str, list[dict]] = {k: [] for k in variants}
    outputs, scores, blocks = set(), set(), {}
    for r in range(args.rounds):
        # ABBA across rounds: the process's first run (page faults, lazy kernel set-up) and any slow drift of the
        # machine fall on both orders, not always on the one run first
        for name in (list(variants) if r % 2 == 0 else list(variants)[::-1]):
            extra = variants[name]
            cfg = load_config(args.overhead, overrides=model + ["workload.warmup=1"] + extra, device="cpu")
            exp = LoopTimer(cfg, limit=n, progress=False)
            exp.run(out)
            stop_if_cut(exp)
            blocks[name] = exp.order["n_blocks"]
            walls[name].append(exp.loop_s)
            cpus[name].append(exp.loop_cpu_s)
            print(f"{name:<12} wall {exp.loop_s:.2f} s  cpu {exp.loop_cpu_s:.2f} s", flush=True)   # kept if cut short
            peaks[name].append({a: row.get("peak_memory_mb") for a, row in exp.summary["arms"].items()})
            outputs.add(json.dumps(sorted((r["arm"], r["request_id"], r["output_ids"]) for r in exp.records)))
            scores.add(json.dumps({a: {k: v for k, v in row.items() if k.startswith("quality_")}
                                   for a, row in exp.summary["arms"].items()}, sort_keys=True))
    best = {k: min(v) for k, v in walls.items()}
    return {"config": args.overhead, "items": n, "blocks": blocks["interleaved"], "walls_s": walls, "cpu_s": cpus,
            "best_s": best, "interleaved_vs_one_block": best["interleaved"] / best["one_block"],
            "wall_ratio": paired_ratio(walls), "cpu_ratio": paired_ratio(cpus),
            "peak_memory_mb": peaks, "same_outputs": len(outputs) == 1, "same_scores": len(scores) == 1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="default: smollm2-135m (drift), random:tiny-llama (overhead)")
    ap.add_argument("--dataset", default="golden/lookup", help="short prompts, mostly answered right: few "
                                                                "diagnosis probes after each run")
    ap.add_argument("--limit", type=int, default=12)
    ap.add_argument("--max-new-tokens", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (2: the busy core slows every step)")
    ap.add_argument("--block-size", type=int, default=1)
    ap.add_argument("--busy-s", type=float, default=300.0, help="upper bound on the background loop's life")
    ap.add_argument("--overhead", default=None, help="a config path: measure the block overhead instead")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    # no failure-diagnosis probes after each run: they cost up to 2 minutes a run and do not depend on the order
    diagnose_run.REPORT_PROBE_BUDGET_S = 0.0
    with tempfile.TemporaryDirectory() as out:
        if args.overhead:
            res = overhead(args, out)
            for name, walls in res["walls_s"].items():
                print(f"{name:<12} walls {', '.join(f'{w:.2f}' for w in walls)} s  "
                      f"cpu {', '.join(f'{c:.2f}' for c in res['cpu_s'][name])} s")
            for what in ("wall", "cpu"):
                r = res[f"{what}_ratio"]
                print(f"interleaved / one block, {what}: x{r['pooled']:.3f} pooled, per round "
                      f"{', '.join(f'x{x:.3f}' for x in r['per_round'])}")
            print(f"peak memory MiB per arm: {res['peak_memory_mb']}")
            print(f"greedy outputs identical in every run: {res['same_outputs']}; scores: {res['same_scores']}")
            print(f"{res['config']} ({res['items']} items, {res['blocks']} blocks interleaved): one block per arm {res['best_s']['one_block']:.2f} s, "
                  f"interleaved {res['best_s']['interleaved']:.2f} s -> x{res['interleaved_vs_one_block']:.3f}")
        else:
            args.model = args.model or "smollm2-135m"
            res = {"model": args.model, "runs": [drift_run(args, o, out) for o in ("sequential", "interleaved")]}
            for r in res["runs"]:
                ci = "[" + ", ".join("n/a" if x is None else f"{x:.3f}" for x in r["ci"]) + "]"
                print(f"{r['order']:<12} b/a pooled x{r['ratio_pooled']:.3f}  block median "
                      f"x{r['ratio_block_median']:.3f} CI {ci}  baseline moved {r['baseline_moved']:+.1%}  "
                      f"wall {r['wall_s']:.1f} s  cpu {r['cpu_s']:.1f} s  (load from pass {r['busy_after_passes']})")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
