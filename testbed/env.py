"""The environment a run was measured in, saved as env.json next to its results.

    collect_env()  # {"python": "3.12.3", "torch": "2.13.0+cpu", "git_sha": "1a2b3c...", "device": "cpu", ...}

Every probe tolerates failure (no git, no torch, no GPU, no NVML): the value is then None.
"""
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import psutil

import testbed


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_sha() -> str | None:
    """The commit of the testbed checkout, with "-dirty" when the tree has changes; None outside git."""
    root = Path(testbed.__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if sha.returncode != 0:
        return None
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def cpu_model() -> str | None:
    """The CPU's marketing name from /proc/cpuinfo, else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _nvml_driver() -> str | None:
    try:
        import pynvml
        pynvml.nvmlInit()
        driver = pynvml.nvmlSystemGetDriverVersion()
        return driver.decode() if isinstance(driver, bytes) else driver
    except Exception:
        return None


def torch_env() -> dict:
    """torch version, threads, device, and GPU name / memory / CUDA version where CUDA is present."""
    try:
        import torch
    except ImportError:
        return {"torch": None, "device": "cpu"}
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(),
           "device": "cuda" if torch.cuda.is_available() else "cpu"}
    if out["device"] == "cuda":
        props = torch.cuda.get_device_properties(0)
        out.update(gpu_name=props.name, gpu_memory_mb=props.total_memory / 2**20,
                   gpu_count=torch.cuda.device_count(), cuda=torch.version.cuda, gpu_driver=_nvml_driver())
    return out


def collect_env() -> dict:
    """Versions, git sha, platform, CPU, threads, device and GPU: what env.json records."""
    env = {"python": platform.python_version(), "testbed": testbed.__version__,
           "transformers": _version("transformers"), "git_sha": git_sha(),
           "platform": platform.platform(), "cpu_model": cpu_model(),
           "cpu_count": os.cpu_count(), "memory_total_mb": psutil.virtual_memory().total / 2**20}
    env.update(torch_env())
    return env
