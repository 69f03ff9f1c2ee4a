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


# The instruction sets a CPU kernel may pick (torch, oneDNN, vLLM's CPU build): two CPUs sold under one name
# ("AMD EPYC" in a VM) or one CPU with features masked by the hypervisor can differ here and run at other speeds.
SIMD = ("avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
        "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16", "asimd", "sve", "sve2")


def cpu_info(cpuinfo: str | None = None) -> dict:
    """cpu_model (the marketing name), cpu_id (vendor, family, model, stepping: the generation, which the name
    may hide) and cpu_simd (the SIMD flags of SIMD present) from /proc/cpuinfo; platform.processor() elsewhere."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    first = {}
    for line in cpuinfo.split("\n\n")[0].splitlines():      # the first processor describes them all
        key, _, value = line.partition(":")
        first[key.strip()] = value.strip()
    ident = [first.get(k) for k in ("vendor_id", "cpu family", "model", "stepping")]
    flags = set((first.get("flags") or first.get("Features") or "").split())
    return {"cpu_model": first.get("model name") or platform.processor() or None,
            "cpu_id": "{} family {} model {} stepping {}".format(*ident) if all(ident) else None,
            "cpu_simd": " ".join(f for f in SIMD if f in flags) or None}


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
           "platform": platform.platform(), **cpu_info(),
           "cpu_count": os.cpu_count(), "memory_total_mb": psutil.virtual_memory().total / 2**20}
    env.update(torch_env())
    return env
