#!/usr/bin/env bash
# A/B comparison of two builds on a noisy shared machine: both run at the same time, one
# thread each, pinned to different cores (swapped every round), so that the host's slow and
# fast periods hit both alike. One thread per build measures the kernels, not the threading;
# the memory bandwidth the two runs share is the same for both. Needs two cores.
#
# Usage: bench/pair_ab.sh conv  A_BENCH_CPU_CONV B_BENCH_CPU_CONV [ROUNDS (default 4)]
#          per bench_cpu_conv case: the medians of the rounds and the ratio A / B (> 1: B faster)
#        bench/pair_ab.sh shapes A_BENCH_CPU_CONV B_BENCH_CPU_CONV [ROUNDS (default 4)] [FILTER]
#          bench_cpu_conv --shapes [--only FILTER]: per model conv, the medians of the rounds of its
#          forward, data gradient and weight gradient, and the ratios A / B
#        bench/pair_ab.sh train A_STYLEGAN2_TRAIN B_STYLEGAN2_TRAIN [ROUNDS (default 4)]
#          the main job's training (Fashion-MNIST, small, --cond=0, 0.75 kimg, ticks of 0.25):
#          s/kimg of ticks 1 and 2 of each round, their medians and the ratio A / B
#   e.g. bench/pair_ab.sh conv /tmp/bench_cpu_conv.before build-prof/bench_cpu_conv 6
#        bench/pair_ab.sh shapes /tmp/bench_cpu_conv.before build-prof/bench_cpu_conv 6 Ddown
set -euo pipefail
usage() {
  echo "usage: $0 conv|train A_BINARY B_BINARY [ROUNDS]  or  $0 shapes A_BINARY B_BINARY [ROUNDS] [FILTER]" >&2
  exit 2
}
[ $# -ge 3 ] && [ $# -le 5 ] || usage
MODE=$1 A=$2 B=$3 ROUNDS=${4:-4} FILTER=${5:-}
case "$MODE" in conv | train) [ $# -le 4 ] || usage ;; shapes) ;; *) usage ;; esac
for f in "$A" "$B"; do [ -x "$f" ] || {
  echo "$0: $f is not an executable" >&2
  exit 2
}; done
command -v taskset > /dev/null || {
  echo "$0: needs taskset (util-linux)" >&2
  exit 2
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run() {  # run SIDE CORE BINARY ROUND
  if [ "$MODE" = conv ]; then
    OMP_NUM_THREADS=1 taskset -c "$2" "$3" > "$tmp/$1_$4" 2>&1
  elif [ "$MODE" = shapes ]; then
    OMP_NUM_THREADS=1 taskset -c "$2" "$3" --shapes ${FILTER:+--only "$FILTER"} > "$tmp/$1_$4" 2>&1
  else
    taskset -c "$2" "$3" --outdir "$tmp/run_$1_$4" --kimg 0.75 --tick 0.25 --threads 1 --metrics 0 \
      --tensorboard=0 --snap 0 --cond=0 > "$tmp/$1_$4" 2>&1
  fi
}
for r in $(seq "$ROUNDS"); do
  if ((r % 2)); then ca=0 cb=1; else ca=1 cb=0; fi
  run a $ca "$A" "$r" &
  run b $cb "$B" "$r" &
  wait
done

median='function median(list,   n, v, i, j, t) {
    n = split(list, v, " ")
    for (i = 1; i <= n; ++i) for (j = i + 1; j <= n; ++j) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }'
echo "# pair_ab $MODE: A=$A B=$B rounds=$ROUNDS, 1 thread each, side by side on cores 0 and 1 (swapped each round)"
if [ "$MODE" = conv ]; then
  echo "# case                                 A_fwd    B_fwd  A/B_fwd   A_fwdbwd B_fwdbwd A/B_fwdbwd  (ms, medians)"
  for side in a b; do
    cat "$tmp"/${side}_* | grep '^case=' | sed 's/case=//; s/fwd_ms=//; s/fwdbwd_ms=//' | awk -v s=$side '{print s, $1, $3, $4}'
  done | awk "$median"'
    { f[$1 " " $2] = f[$1 " " $2] " " $3; g[$1 " " $2] = g[$1 " " $2] " " $4; cases[$2] = 1 }
    END {
      for (c in cases) {
        af = median(f["a " c]); bf = median(f["b " c]); ag = median(g["a " c]); bg = median(g["b " c])
        printf "%-36s %8.3f %8.3f %8.2f %10.3f %8.3f %10.2f\n", c, af, bf, af / bf, ag, bg, ag / bg
      }
    }' | sort
elif [ "$MODE" = shapes ]; then
  echo "# shape                             A_fwd    B_fwd    A/B    A_dgrad  B_dgrad    A/B    A_wgrad  B_wgrad    A/B  (ms, medians)"
  for side in a b; do
    cat "$tmp"/${side}_* | grep '^shape=.*impl=stylegrad' | sed 's/shape=//; s/impl=stylegrad//; s/[a-z]*_ms=//g' |
      awk -v s=$side '{print s, $1, $2, $3, $4}'
  done | awk "$median"'
    { for (i = 0; i < 3; ++i) t[$1 " " $2 " " i] = t[$1 " " $2 " " i] " " $(3 + i); shapes[$2] = 1 }
    END {
      for (c in shapes) {
        line = sprintf("%-34s", c)
        for (i = 0; i < 3; ++i) {
          a = median(t["a " c " " i]); b = median(t["b " c " " i])
          line = line sprintf(" %8.3f %8.3f %6.2f", a, b, a / b)
        }
        print line
      }
    }' | sort
else
  for side in a b; do
    grep -h '^tick [12] ' "$tmp"/${side}_* | awk -v s=$side '{print s, $6}'
    grep -h -m1 '^tick 2 ' "$tmp"/${side}_1 | sed "s/^/# $side, round 1, last tick: /"
  done | awk "$median"'
    /^#/ { print; next }
    { v[$1] = v[$1] " " $2 }
    END {
      printf "A s/kimg:%s\nB s/kimg:%s\n", v["a"], v["b"]
      printf "medians: A %.2f  B %.2f  A/B %.2f\n", median(v["a"]), median(v["b"]), median(v["a"]) / median(v["b"])
    }'
fi
