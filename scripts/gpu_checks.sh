#!/usr/bin/env bash
# The GPU checks, as one script for a GPU machine. With internet: `pip install -e .` and run it.
# Without (an image that has torch and transformers but not testbed's pure-Python dependencies):
# download them here as cp312 manylinux wheels into .whl/ and carry that folder, e.g.
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
#     -d .whl pydantic pydantic_core annotated-types typing-inspection jsonschema \
#     jsonschema-specifications referencing rpds-py typing_extensions
#   bash scripts/gpu_checks.sh            # writes logs to $OUT (or ./gpu-results)
# Random weights (no weights travel), so quality is meaningless here; speed, memory and
# token-for-token agreement are not.
#   STEPS="routing" bash scripts/gpu_checks.sh   # only some steps: paged, spec, routing, context (default: all)
# Real weights travel in parts over consecutive warm calls (scripts/stage_weights.py's docstring):
#   python scripts/stage_weights.py split smollm2-135m; pip download --no-deps -d .whl gguf   # here
#   run carry=[.stage/smollm2-135m/manifest.json, .stage/smollm2-135m/part01]   # exit 2: part02 missing
#     python3 scripts/stage_weights.py join .stage/smollm2-135m
#   run carry=[.stage/smollm2-135m/part02, .whl]
#     python3 scripts/stage_weights.py join .stage/smollm2-135m && ...
#   -> .stage/smollm2-135m/smollm2-135m.gguf, a GGUF model.id (--set model.id=...); the steps below don't use it yet
set -uo pipefail
OUT=${OUT:-gpu-results}; mkdir -p "$OUT"
STEPS=${STEPS:-paged spec routing context}
want() { [[ " $STEPS " == *" $1 "* ]]; }
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/card.txt"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, torch.cuda.get_device_name())" | tee -a "$OUT/card.txt"
if want paged; then
# 1. correctness on the GPU: float32 paged vs hf, greedy, token for token (expect 100%)
python3 scripts/bench_paged.py --model random:small-llama --device cuda --dtype float32 --requests 16 \
  --kv-budget 8192 --rounds 1 --threads 4 2>&1 | tee "$OUT/paged_small_fp32.txt"
# 2. the issue-3 benchmark on a ~1B Llama-shape model, bfloat16, paged vs hf static at the same KV budget
python3 scripts/bench_paged.py --model random:llama-1b --device cuda --dtype bfloat16 --requests 64 \
  --kv-budget 32768 --block-size 16 --max-batched-tokens 4096 --rounds 2 --threads 4 2>&1 | tee "$OUT/paged_llama1b_bf16.txt"
fi
if want spec; then
# 3. speculative decoding on the GPU, batch 1, fp32 (lossless check: match 100%), hf and paged engines,
#    next to transformers' assisted generation. Random weights: α says little about real models.
python3 scripts/bench_spec.py --model random:llama-1b --device cuda --dtype float32 --limit 8 --threads 4 \
  --methods ours_pl,ours_pl_min,paged_pl,paged_pl_min,hf_pl,ours_self,hf_self 2>&1 | tee "$OUT/spec_llama1b_fp32.txt"
fi
if want routing; then
# 4. routing on CUDA with random tiers (small-llama vs llama-1b, bfloat16): labelling pass, routed hf and
#    paged engines, cascade confidence pass, cost from measured GPU seconds. Quality is noise here.
RUNS=$(mktemp -d)
python3 -m testbed run configs/gpu/routing_random.yaml --quiet --out "$RUNS" ${ROUTING_ARGS:-} 2>&1 \
  | grep -v "Loading weights" | tee "$OUT/routing_random.txt"
for d in "$RUNS"/*/; do cp "$d/report.md" "$OUT/report_$(basename "$d").md"; cp "$d/summary.json" "$OUT/summary_$(basename "$d").json"; done
fi
if want context; then
# 5. the context layer on CUDA: configs/compression.yaml (12 long_noisy items, ~1,200 retrieved tokens each) with a random
#    1B Llama shape in place of SmolLM2 (bfloat16). Quality is noise; context tokens saved and what they do to
#    TTFT and E2EL on a GPU are not (every arm answers max_new_tokens: random weights rarely stop early).
RUNS=$(mktemp -d)
python3 -m testbed run configs/compression.yaml --quiet --out "$RUNS" --device cuda --set model.id=random:llama-1b \
  --set model.dtype=bfloat16 ${CONTEXT_ARGS:-} 2>&1 | grep -v "Loading weights" | tee "$OUT/context_random.txt"
for d in "$RUNS"/*/; do cp "$d/report.md" "$OUT/report_$(basename "$d").md"
  python3 scripts/bench_context.py "$d" 2>&1 | tee "$OUT/bench_context_$(basename "$d").txt"; done
fi
