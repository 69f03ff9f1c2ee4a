#!/bin/bash
# session 14 exclusive batch (trees exported with git archive into /tmp/s14/NAME, this commit's
# scripts/bench_client.py copied into each; run as: PREFIX=s14a /work/bin/cpu-excl /usr/bin/time ... s14-batch.sh)
# session 14 exclusive batch: base (80ecf0b) / warm (fa418a3, --warm-connections) / lazy (4358263),
# interleaved, the order rotating each round; the same bench script in every tree
OUT=/work/wt1/docs/client
ROUNDS=${ROUNDS:-6}
CONFIGS=("base:" "warm:--warm-connections" "lazy:")
echo "batch start $(date -u +%T)"
T0=$(date +%s.%N)
for r in $(seq 1 $ROUNDS); do
  for k in 0 1 2; do
    spec=${CONFIGS[$(( (k + r - 1) % 3 ))]}
    n=${spec%%:*}; f=${spec#*:}
    f_out=$OUT/${PREFIX:-s14}-${n}_pin_${r}.txt
    cd /tmp/s14/$n
    { echo "tree $n ($(date -u +%T)): python scripts/bench_client.py --streams 256 --tokens 32 --gap-ms 50 --spread 3 --pin $f"
      PYTHONPATH=$PWD OMP_NUM_THREADS=1 /usr/bin/time -f "wall %e s, CPU %U user + %S sys s" \
        /work/main/.venv/bin/python scripts/bench_client.py --streams 256 --tokens 32 --gap-ms 50 --spread 3 --pin $f 2>&1
    } > $f_out 2>&1
    echo "round $r $n: $(grep -o 'wall.*' $f_out)"
  done
done
echo "batch end $(date -u +%T), $(echo "$(date +%s.%N) - $T0" | bc) s"
