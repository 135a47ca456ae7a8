# Shared by the CPU benchmark scripts (sourced, not run): waits for the machine to be quiet,
# sets QUIET (a line for the result file), OMP/OpenBLAS threads, TMP, and run_measured, which
# runs a command and reports how much CPU the rest of the machine used meanwhile.
# ---- machine state: anything else busy? -------------------------------------------------
# processes using >= 10% CPU right now (top's second sample is the instantaneous one)
busy_procs() { top -bn2 -d0.5 -w 200 | awk '/^top -/{n++} n==2 && $1 ~ /^[0-9]+$/ && $9+0 >= 10 && $12 != "top" {printf "%s(pid %s, %s%%) ", $12, $1, $9}'; }
# wait up to ${QUIET_WAIT_S:-120} s for the machine to go quiet (others may be compiling or testing)
for _ in $(seq 1 $(( ${QUIET_WAIT_S:-120} / 5 ))); do
  BUSY="$(busy_procs)"
  [ -z "$BUSY" ] && break
  echo "   waiting for quiet: $BUSY"
  sleep 5
done
LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "$BUSY" ]; then
  QUIET="NOT QUIET: other processes busy at start: $BUSY(loadavg $LOAD)"
else
  QUIET="quiet at start (loadavg $LOAD, no other process >= 10% CPU)"
fi
echo "== machine: $QUIET"

# ---- run ---------------------------------------------------------------------------------
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
# Runs a command with its stdout in $1, and measures how much CPU the REST of the machine
# used meanwhile: (busy jiffies of /proc/stat) - (the command's own user+sys time).
CLK="$(getconf CLK_TCK)"
busy_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
run_measured() {
  local out="$1"; shift
  local b0 b1 t0 t1 own
  b0="$(busy_jiffies)"; t0="$(date +%s.%N)"
  local TIMEFORMAT='%U %S'
  { time "$@" >"$out" 2>"$out.err"; } 2>"$out.time"
  b1="$(busy_jiffies)"; t1="$(date +%s.%N)"
  cat "$out"; cat "$out.err" >&2
  own="$(tail -1 "$out.time")"
  awk -v b0="$b0" -v b1="$b1" -v clk="$CLK" -v t0="$t0" -v t1="$t1" -v own="$own" -v ncpu="$(nproc)" 'BEGIN {
    split(own, o, " "); wall = t1 - t0; total = (b1 - b0) / clk; foreign = total - o[1] - o[2]
    if (foreign < 0) foreign = 0
    pct = 100 * foreign / (wall * ncpu)
    printf "wall %.1f s, own cpu %.1f s, other processes %.1f cpu-s = %.0f%% of the %d cores%s\n", wall, o[1] + o[2], foreign, pct, ncpu, (pct > 5 ? " -> CONTENDED, numbers unreliable" : "")
  }' > "$out.load"
}
