"""Peak memory during a block of work (DESIGN §4): process RSS on the CPU; on CUDA also the
allocator's peak (`torch.cuda.max_memory_allocated`) and NVML's used device memory.

    with MemoryTracker(device="cpu") as mem:
        run_arm()
    mem.as_metrics()   # {"peak_memory_mb": 812.4}

`as_metrics()` may also be called inside the block (the runner does, so an interrupted arm keeps
its figures): the CUDA allocator's peak is then read at that moment.

A background thread samples every `interval_s` (10 ms), so a spike shorter than that can be missed;
RSS includes everything the process and its children hold (weights loaded before the block too).
The children are listed again only every `children_every_s` (1 s): listing scans every process in
/proc (~2 ms of CPU here), which at 100 Hz took 17% of a core from the engine or server being measured.
"""
import threading
import time

import psutil

MB = 1024 * 1024


def _nvml_handle(index: int):
    """An NVML device handle, or None where pynvml or the driver is missing."""
    try:
        import pynvml
        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetHandleByIndex(index)
    except Exception:
        return None


def _nvml_used(handle) -> int | None:
    try:
        import pynvml
        return int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)
    except Exception:
        return None


class MemoryTracker:
    """Context manager recording peak RSS (and, on CUDA, allocator and NVML peaks) in MB (MiB)."""

    def __init__(self, device: str = "cpu", interval_s: float = 0.01, children_every_s: float = 1.0):
        self.device = str(device)
        self.interval_s = interval_s
        self.children_every_s = children_every_s
        self._proc = psutil.Process()
        self._children: list[psutil.Process] = []
        self._listed_at = float("-inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._nvml = None
        self._peak_rss = 0
        self._peak_nvml: int | None = None
        self.gpu_max_allocated_mb: float | None = None

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    def _rss(self) -> int:
        """This process's RSS plus its children's (vLLM's engine core and worker, when it runs them)."""
        total = self._proc.memory_info().rss
        if time.monotonic() - self._listed_at >= self.children_every_s:
            self._children, self._listed_at = self._proc.children(recursive=True), time.monotonic()
        for child in self._children:
            try:
                total += child.memory_info().rss
            except psutil.Error:      # ended between listing and reading
                pass
        return total

    def _sample(self) -> None:
        self._peak_rss = max(self._peak_rss, self._rss())
        if self._nvml is not None:
            used = _nvml_used(self._nvml)
            if used is not None:
                self._peak_nvml = max(self._peak_nvml or 0, used)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> "MemoryTracker":
        if self.is_cuda:
            import torch
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._nvml = _nvml_handle(torch.device(self.device).index or 0)
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="memory-tracker", daemon=True)
        self._thread.start()
        return self

    def _read_gpu_peak(self) -> None:
        import torch
        torch.cuda.synchronize()
        self.gpu_max_allocated_mb = torch.cuda.max_memory_allocated() / MB

    def __exit__(self, *exc) -> None:
        if self.is_cuda:
            self._read_gpu_peak()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    @property
    def peak_mb(self) -> float:
        return self._peak_rss / MB

    def as_metrics(self) -> dict[str, float]:
        if self.is_cuda and not self._stop.is_set():     # still inside the block
            self._read_gpu_peak()
        out = {"peak_memory_mb": self.peak_mb}
        if self.gpu_max_allocated_mb is not None:
            out["gpu_max_allocated_mb"] = self.gpu_max_allocated_mb
        if self._peak_nvml is not None:
            out["nvml_used_mb"] = self._peak_nvml / MB
        return out
