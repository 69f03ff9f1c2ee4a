"""Failure diagnosis: did each wrong answer fail on retrieval, routing, context or the model?

    python -m testbed diagnose results/compression-<UTC>              # runs the probes the run cannot answer
    python -m testbed diagnose results/compression-<UTC> --no-probe   # the run's evidence and cached probes only

classify.py holds the rules (pure, over records and a probe callable), probe.py the probes (the
gold chunks alone, or the strongest tier, through the hf engine; cached in the run directory),
run.py the two entry points: the end of every run and the command.
"""
from testbed.diagnose.classify import CAUSES, RULE, Probe, diagnose
from testbed.diagnose.run import diagnose_experiment, diagnose_run_dir

__all__ = ["CAUSES", "RULE", "Probe", "diagnose", "diagnose_experiment", "diagnose_run_dir"]
