"""The timed section runs with the start-up heap frozen, so no full-heap GC pause lands in it."""
import gc

import testbed.runner as runner
from testbed.config import validate
from testbed.drive import drive, frozen_gc


class Cycle:
    def __init__(self):
        self.me = self


def test_frozen_gc_collects_first_freezes_inside_and_unfreezes_after():
    assert gc.get_freeze_count() == 0
    Cycle()                                        # garbage only the cyclic collector can free
    with frozen_gc():
        assert not any(type(o) is Cycle for o in gc.get_objects())      # collected on entry
        frozen = gc.get_freeze_count()
        kept = Cycle()
        assert frozen > 1000 and all(o is not kept for o in gc.get_objects(generation=2))
        gc.collect()                               # a full collection now walks only the new objects
        assert gc.get_freeze_count() == frozen
    assert gc.get_freeze_count() == 0


def test_frozen_gc_unfreezes_when_the_run_fails():
    try:
        with frozen_gc():
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert gc.get_freeze_count() == 0


def test_the_runner_drives_every_arm_inside_frozen_gc(tmp_path, monkeypatch):
    seen = []

    def spy(*args, **kwargs):
        seen.append(gc.get_freeze_count())
        return drive(*args, **kwargs)

    monkeypatch.setattr(runner, "drive", spy)
    cfg = validate({"name": "gc", "model": {"id": "random:tiny-llama", "dtype": "float32"}, "device": "cpu",
                    "threads": 1, "baseline": "a",
                    "workload": {"dataset": "random", "limit": 2, "random": {"input_len": 8, "output_len": 2},
                                 "warmup": 0, "ignore_eos": True},
                    "arms": {"a": {"engine": "hf", "batch_size": 2}, "b": {"engine": "hf", "batch_size": 1}}})
    runner.run_experiment(cfg, out_dir=tmp_path, progress=False)
    assert len(seen) == 2 and all(n > 0 for n in seen)
    assert gc.get_freeze_count() == 0
