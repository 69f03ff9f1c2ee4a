"""The probes: one item, a chosen set of its chunks, one model, the arm's sampling, scored like the run.

    probe = ProbeRunner(run_dir, items, arm_settings(cfg), models={lm.spec_id: lm})   # testbed.arm.arm_settings
    probe(Probe("gold_only", "as_retrieved", "ln-03", "smollm2-135m", ("c4",)))   # True, False or None

A probe runs through the hf engine at batch 1 (the reference decoding), with the prompt built by
the workload's own build_messages/render_prompt and scored by score_output, so its answer means
what the arm's would. Results are appended to diagnosis_probes.jsonl in the run directory and read
back first, keyed by everything that decides the answer (model, item, chunk ids, sampling, token cap,
system prompt): re-running the diagnosis recomputes nothing. A probe returns None (not run) when
its model is not at hand and loading is off, past the time budget, or after a Ctrl-C.
"""
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from testbed.arm import ArmSetting
from testbed.config import ExperimentConfig, ModelSpec
from testbed.diagnose.classify import Probe
from testbed.drive import run_all
from testbed.engines.hf import HFEngine
from testbed.metrics.quality import score_output
from testbed.models import load_model
from testbed.request import Request
from testbed.workloads.items import Item
from testbed.workloads.prompts import build_messages, render_prompt

PROBES_FILE = "diagnosis_probes.jsonl"


def model_specs(cfg: ExperimentConfig) -> dict[str, ModelSpec]:
    """Every model spec the config names (the main one and arms'), by id, so a probe loads it the same way."""
    specs = {cfg.model.id: cfg.model}
    specs.update({a.model.id: a.model for a in cfg.arms.values() if a.model is not None})
    return specs


def read_cache(path: Path) -> dict[str, dict]:
    """key -> probe row; a line that is not a probe row (a torn last write, a damaged file) is skipped: the
    cache only saves work, and a probe it lacks is run again (or left as needs_probe)."""
    out: dict[str, dict] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                continue
            if isinstance(row, dict) and isinstance(row.get("key"), str) and isinstance(row.get("correct"), bool):
                out[row["key"]] = row
    return out


class ProbeRunner:
    """The diagnosis's probe callable: cached answers first, else one generation through the hf engine."""

    def __init__(self, run_dir: str | Path, items: dict[str, Item], settings: dict[str, ArmSetting],
                 models: dict[str, Any] | None = None, specs: dict[str, ModelSpec] | None = None,
                 device: Any = "cpu", load: bool = True, budget_s: float | None = None):
        self.path = Path(run_dir) / PROBES_FILE
        self.cache = read_cache(self.path)
        self.items, self.settings = items, settings
        self.models = dict(models or {})
        self.specs, self.device, self.load = specs or {}, device, load
        self.deadline = None if budget_s is None else time.perf_counter() + budget_s
        self.counts = {"cached": 0, "run": 0, "not_run": 0}
        self.interrupted = False

    def key(self, p: Probe) -> str:
        return json.dumps([p.model, p.item_id, list(p.chunk_ids), asdict(self.settings[p.arm])], sort_keys=True)

    def __call__(self, p: Probe) -> bool | None:
        key = self.key(p)
        if key in self.cache:
            self.counts["cached"] += 1
            return self.cache[key]["correct"]
        late = self.deadline is not None and time.perf_counter() > self.deadline
        lm = None if late or self.interrupted else self._model(p.model)
        if lm is None:
            self.counts["not_run"] += 1
            return None
        try:
            row = {"key": key, **self.run(p, lm)}
        except KeyboardInterrupt:       # stop probing, keep what is done; the rest shows as needs_probe
            self.interrupted = True
            self.counts["not_run"] += 1
            return None
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.cache[key] = row
        self.counts["run"] += 1
        return row["correct"]

    def _model(self, model_id: str) -> Any:
        if model_id not in self.models and self.load:
            self.models[model_id] = load_model(self.specs.get(model_id) or ModelSpec(id=model_id), self.device)
        return self.models.get(model_id)

    def run(self, p: Probe, lm: Any) -> dict:
        """Generate the probe's answer and score it; the row stored in the cache."""
        item, setting = self.items[p.item_id], self.settings[p.arm]
        by_id = {c.id: c for c in item.chunks}
        chunks = [by_id[i] for i in p.chunk_ids if i in by_id]
        text, ids = render_prompt(lm.tokenizer, build_messages(item, chunks, setting.system_prompt))
        req = Request(id=f"probe-{p.item_id}", prompt_ids=ids, prompt_text=text,
                      max_new_tokens=item.max_new_tokens or setting.max_new_tokens, sampling=setting.sampling(),
                      arrival_time=time.perf_counter(), item_id=item.id, category=item.category,
                      eos_token_ids=lm.eos_token_ids)
        t = time.perf_counter()
        run_all(HFEngine(lm, HFEngine.Options(), {}), [req])
        output = lm.tokenizer.decode(req.output_ids, skip_special_tokens=True)
        scored = score_output(item, output) if req.status == "finished" else {"score": 0.0, "correct": False}
        return {"kind": p.kind, "arm": p.arm, "model": p.model, "item_id": p.item_id, "chunk_ids": list(p.chunk_ids),
                "status": req.status, "error": req.error, "output_text": output, "score": scored["score"],
                "correct": scored["correct"], "seconds": round(time.perf_counter() - t, 3)}
