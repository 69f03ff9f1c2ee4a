#!/bin/bash
set -u
out=$1
for r in 1 2; do
  if [ $r -eq 1 ]; then order="base new"; else order="new base"; fi
  for t in $order; do
    (cd /tmp/s15/$t && PYTHONPATH=$PWD OMP_NUM_THREADS=1 /usr/bin/time -f "wall %e s, cpu %U+%S s" \
      /work/main/.venv/bin/python scripts/bench_client.py --streams 256 --tokens 32 --gap-ms 50 --spread 3 \
      > $out/$t\_free_$r.txt 2>&1)
    echo "$(date -u +%T) $t free round $r: $(tail -1 $out/$t\_free_$r.txt)"
  done
done
