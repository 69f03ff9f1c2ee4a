#!/bin/bash
# Interleaved client benchmark: base vs new trees, order alternating per round. Run under cpu-excl.
set -u
out=$1; rounds=$2; shift 2
for r in $(seq 1 $rounds); do
  if [ $((r % 2)) -eq 1 ]; then order="base new"; else order="new base"; fi
  for t in $order; do
    (cd /tmp/s15/$t && PYTHONPATH=$PWD OMP_NUM_THREADS=1 /usr/bin/time -f "wall %e s, cpu %U+%S s" \
      /work/main/.venv/bin/python scripts/bench_client.py --streams 256 --tokens 32 --gap-ms 50 --spread 3 --pin "$@" \
      > $out/$t\_pin_$r.txt 2>&1)
    echo "$(date -u +%T) $t round $r: $(tail -1 $out/$t\_pin_$r.txt)"
  done
done
