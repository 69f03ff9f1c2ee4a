"""testbed/metrics/cpu.py's process-tree readers: on made-up /proc trees, on this test's own
process and on a child that burns a known amount of CPU."""
import os
import subprocess
import sys
import threading

import pytest

from testbed.metrics import cpu


class FakeProcess:
    """psutil.Process over a made-up tree: 10 -> 11 -> 12."""
    tree = {10: [11, 12], 11: [12], 12: []}

    def __init__(self, pid):
        self.pid = pid

    def children(self, recursive=False):
        return [FakeProcess(p) for p in self.tree[self.pid]]


def test_runqueue_wait_sums_the_wait_field_over_the_whole_process_tree(tmp_path, monkeypatch):
    stats = {(10, 10): "7 1500000000 4", (10, 13): "9 250000000 2", (11, 11): "1 1000000000 1",
             (12, 12): "3 250000000 1", (12, 14): "garbage"}      # a thread read mid-exit counts nothing
    for (pid, tid), text in stats.items():
        d = tmp_path / str(pid) / "task" / str(tid)
        d.mkdir(parents=True)
        (d / "schedstat").write_text(text + "\n")
    monkeypatch.setattr(cpu.psutil, "Process", FakeProcess)
    # the second field (runnable, waiting), not the first (on CPU): 1.5 + 0.25 + 1.0 + 0.25
    assert cpu.runqueue_wait_s(10, tmp_path) == pytest.approx(3.0)
    assert cpu.runqueue_wait_s(12, tmp_path) == pytest.approx(0.25)


def test_thread_cpus_lists_every_thread_of_the_tree_with_the_cpus_it_may_run_on():
    """bench_parity --pin's record of where a server's threads may run, read here on this test's own process."""
    stop = threading.Event()
    extra = threading.Thread(target=stop.wait, name="pinned-probe")
    extra.start()
    try:
        lines = cpu.thread_cpus(os.getpid()).splitlines()
    finally:
        stop.set()
        extra.join()
    allowed = sorted(os.sched_getaffinity(0))
    mine = [line.split() for line in lines if line.split()[0] == str(os.getpid())]
    assert {tid for _, tid, *_ in mine} >= {str(os.getpid()), str(extra.native_id)}
    spans = {line[-1] for line in mine}
    assert len(spans) == 1 and spans.pop().startswith(f"cpus={allowed[0]}")


def test_cpu_seconds_of_another_process_counts_its_cpu_and_this_tree_holds_it():
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\nprint('done', flush=True)\ninput()"
    child = subprocess.Popen([sys.executable, "-c", burn], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "done"
        assert cpu.cpu_seconds(child.pid) >= 0.3
        assert cpu.cpu_seconds() >= cpu.cpu_seconds(child.pid)     # the child is in this process's tree
    finally:
        child.communicate("\n", timeout=30)
