# The README's two commands.
PYTHON ?= python

.PHONY: run test
run:   ## the main job: quickstart on the CPU with the embedded SmolLM2-135M
	$(PYTHON) -m testbed run configs/quickstart.yaml

test:  ## every test, including the few slow ones on the real SmolLM2-135M
	$(PYTHON) -m pytest -q
