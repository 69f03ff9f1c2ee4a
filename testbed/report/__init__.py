"""Results on disk and the comparison report: run-directory writer, tables, plots, HTML, cross-run comparison.

    writer = RunWriter(run_dir)
    writer.append_record(rec)                 # per request, fsynced
    writer.write_summary(summary); writer.write_report(summary, records)
    compare_runs(["results/a-...", "results/b-..."])   # one row per (run, arm)
"""
from testbed.report.compare import compare_runs, read_records, read_summary
from testbed.report.writer import RunWriter

__all__ = ["RunWriter", "compare_runs", "read_records", "read_summary"]
