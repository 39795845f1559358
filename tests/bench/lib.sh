# shellcheck shell=bash
# shellcheck disable=SC2034 # its globals are read by services.sh and the scripts that source it
# Shared by the benchmark scripts that run sluice against services of their own
# (tests/bench/proxy/run, tests/bench/delivery/run): arithmetic, CPU and memory counters of a
# process and of the machine, stopping by pid, a throwaway PostgreSQL and RabbitMQ, perf
# sampling, and the generated section of BENCHMARKS.md. Source it after tests/support/services.sh.
#
# Globals it reads or sets (each script declares them before it starts anything):
#   TMP            the run's temp dir (services live below it)
#   PG_DATA PG_URL set by bench_start_postgres
#   AMQP_URL RMQ_PID  set by bench_start_rabbitmq
#   SLUICE_PID     profiled by perf_start with RMQ_PID
#   PERF_DIR PERF_PID PERF_STAT_PID  perf_start / perf_stop
#   M              associative array of every measured number (bench_machine_facts fills some)

declare -A M

log() { printf '[%(%H:%M:%S)T] bench: %s\n' -1 "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

stop_pid() { # PID SECONDS: SIGTERM, then SIGKILL after SECONDS
  local pid=$1 deadline=$((SECONDS + $2))
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "pid $pid did not stop in ${2}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  wait "$pid" 2>/dev/null || true
}

calc() { awk "BEGIN { printf \"%.${2:-0}f\", $1 }"; }
div() { awk "BEGIN { b = $2; printf \"%.${3:-0}f\", b == 0 ? 0 : ($1) / b }"; }
ge() { awk "BEGIN { exit !(($1) >= ($2)) }"; }
gt() { awk "BEGIN { exit !(($1) > ($2)) }"; }
now_ns() { date +%s%N; }
# median of the arguments (numbers)
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
CLK_TCK=$(getconf CLK_TCK)

# Runs of a measurement are kept in M as PREFIX_r<N>_FIELD, N = 1..REPEAT.
# best_run PREFIX FIELD: the run number whose FIELD is the largest (ties: the first)
best_run() {
  local prefix=$1 field=$2 best=1 r
  for ((r = 2; r <= REPEAT; r++)); do
    gt "${M[${prefix}_r${r}_$field]}" "${M[${prefix}_r${best}_$field]}" && best=$r
  done
  echo "$best"
}
join_list() { local IFS=,; local s="$*"; echo "${s//,/, }"; }
runs_list() { # PREFIX FIELD -> "a, b, c"
  local r out=
  for ((r = 1; r <= REPEAT; r++)); do out+="${out:+, }${M[${1}_r${r}_$2]}"; done
  echo "$out"
}

# hist_quantile BEFORE AFTER NAME Q: the Q quantile in ms of histogram NAME (all label sets
# summed) between two /metrics dumps, interpolated inside its bucket as Prometheus'
# histogram_quantile does (the buckets are 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25 ms, ...: coarse).
hist_quantile() {
  awk -v name="$3_bucket" -v q="$4" '
    index($1, name "{") == 1 {
      le = $1; sub(/.*le="/, "", le); sub(/".*/, "", le)
      if (FNR == NR) before[le] += $2; else after[le] += $2
    }
    END {
      n = 0
      for (le in after) { b[++n] = le }
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) {
        x = (b[i] == "+Inf") ? 1e99 : b[i] + 0; y = (b[j] == "+Inf") ? 1e99 : b[j] + 0
        if (y < x) { t = b[i]; b[i] = b[j]; b[j] = t }
      }
      total = after[b[n]] - before[b[n]]
      if (total <= 0) { print "-"; exit }
      want = q * total; prev_le = 0; prev_c = 0
      for (i = 1; i <= n; i++) {
        c = after[b[i]] - before[b[i]]
        if (c >= want) {
          if (b[i] == "+Inf") { printf "> %.1f\n", prev_le * 1000; exit }
          printf "%.2f\n", 1000 * (prev_le + (b[i] - prev_le) * (want - prev_c) / (c - prev_c)); exit
        }
        prev_le = b[i]; prev_c = c
      }
    }' "$1" "$2"
}

# CPU time of a process in clock ticks (utime + stime of all its threads).
proc_ticks() {
  local stat f
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || {
    echo 0
    return
  }
  stat=${stat##*) }
  read -ra f <<<"$stat"
  echo $((f[11] + f[12]))
}
# CPU ticks of a process, of its live children and of the children it reaped (PostgreSQL's
# postmaster and its backends).
tree_ticks() {
  local stat f total child
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || {
    echo 0
    return
  }
  stat=${stat##*) }
  read -ra f <<<"$stat"
  total=$((f[11] + f[12] + f[13] + f[14]))
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    total=$((total + $(proc_ticks "$child")))
  done
  echo "$total"
}
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
busy_compilers() { { ps -C cc1plus,cc1,ld,ninja --no-headers 2>/dev/null || true; } | wc -l; }
machine_busy() { # busy and total ticks of the whole machine
  local cpu user nice system idle iowait irq softirq steal
  read -r cpu user nice system idle iowait irq softirq steal _ </proc/stat
  echo "$((user + nice + system + irq + softirq + steal)) $((user + nice + system + idle + iowait + irq + softirq + steal))"
}

# The facts every report starts with, into M: nproc cpu mem kernel load_start compilers_start
# date commit rabbitmq (ROOT is the repository).
bench_machine_facts() {
  M[nproc]=$(nproc)
  M[cpu]=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
  M[mem]=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
  M[kernel]=$(uname -r)
  M[load_start]=$(cut -d' ' -f1-3 /proc/loadavg)
  M[compilers_start]=$(busy_compilers)
  M[date]=$(date -u '+%Y-%m-%d %H:%M UTC')
  M[commit]=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  if [[ -n $(git -C "$ROOT" status --porcelain 2>/dev/null || true) ]]; then
    M[commit]+=" (with uncommitted changes)"
  fi
  M[rabbitmq]=$(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || echo unknown)
}

# bench_start_postgres [SETTING=VALUE...]: the settings go into its postgresql.conf.
# shellcheck disable=SC2120 # the settings are optional
bench_start_postgres() {
  svc_pick_port PG_PORT
  PG_DATA=$TMP/pg/data
  svc_pg_init "$PG_DATA" "$PG_PORT" "$@" || die "initdb failed"
  svc_pg_start "$PG_DATA" 60 || die "postgres did not start"
  PG_URL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
}

# bench_start_rabbitmq NODE_NAME: a node of its own (own epmd) in TMP/rabbitmq.
bench_start_rabbitmq() {
  local amqp_port dist_port epmd_port
  svc_pick_port amqp_port
  svc_pick_port dist_port
  svc_pick_port epmd_port
  SVC_RMQ_DIR=$TMP/rabbitmq
  SVC_RMQ_NODE=$1@localhost
  SVC_RMQ_PORT=$amqp_port
  SVC_RMQ_DIST_PORT=$dist_port
  SVC_RMQ_EPMD_PORT=$epmd_port
  svc_rmq_start 120 >"$TMP/rabbitmq-start.out" 2>&1 || {
    cat "$TMP/rabbitmq-start.out" >&2
    die "rabbitmq did not start"
  }
  AMQP_URL="amqp://guest:guest@127.0.0.1:$amqp_port/"
  RMQ_PID=$(svc_read_pid "$(svc_rmq_pidfile)")
}

# Stops what bench_start_postgres and bench_start_rabbitmq started (for the EXIT trap).
bench_stop_services() {
  [[ -n ${PG_DATA:-} && -d $PG_DATA ]] && svc_pg_stop "$PG_DATA" fast
  if [[ -n ${TMP:-} && -d $TMP/rabbitmq ]]; then
    svc_rmq_stop 30
    svc_epmd_stop
  fi
  return 0
}

# perf_start NAME SECONDS: with PERF_DIR set, samples sluice and the RabbitMQ VM (call graphs)
# for SECONDS into PERF_DIR/perf-NAME.data; perf_stop waits and writes the top symbols of each
# into perf-NAME.txt. SLUICE_BENCH_PERF_CALL_GRAPH picks perf's call-graph mode ("fp", the
# default, is cheap but Release builds keep no frame pointers; "dwarf,16384" follows the calls
# out of malloc and the like, for short runs: its samples are large).
PERF_NAME=
perf_start() {
  [[ -n $PERF_DIR ]] || return 0
  mkdir -p "$PERF_DIR"
  PERF_NAME=$1
  perf record --call-graph "${SLUICE_BENCH_PERF_CALL_GRAPH:-fp}" -F 999 -p "$SLUICE_PID,$RMQ_PID" -o "$PERF_DIR/perf-$1.data" -q -- \
    sleep "$2" >/dev/null 2>&1 &
  PERF_PID=$!
  # System calls and context switches of sluice alone (tracepoint counts, no sampling; `perf
  # trace -s` would name the calls but slows sluice several times).
  perf stat -e raw_syscalls:sys_enter,context-switches -p "$SLUICE_PID" \
    -o "$PERF_DIR/perf-$1.stat" -- sleep "$2" >/dev/null 2>&1 &
  PERF_STAT_PID=$!
}
perf_stop() {
  [[ -n $PERF_PID ]] || return 0
  wait "$PERF_PID" || true
  wait "$PERF_STAT_PID" || true
  PERF_PID=
  PERF_STAT_PID=
  local data=$PERF_DIR/perf-$PERF_NAME.data
  {
    perf report -i "$data" --stdio --no-children --sort comm,dso --percent-limit 1 2>/dev/null
    perf report -i "$data" --stdio --no-children --comms sluice --sort sym -g none \
      --percentage relative --percent-limit 0.7 2>/dev/null
    perf report -i "$data" --stdio --children --comms sluice --sort sym -g none \
      --percentage relative --percent-limit 3 2>/dev/null
  } | grep -v '^$' >"$PERF_DIR/perf-$PERF_NAME.txt" || true
}

# bench_write_section OUT KEY TITLE BODY_FILE: replaces the part of OUT between the
# bench:KEY markers with BODY_FILE (adding "## TITLE" and the markers at the end the first
# time); keeps everything else.
bench_write_section() {
  local out=$1 key=$2 title=$3 body=$4
  [[ -n $out ]] || return 0
  local begin="<!-- bench:$key:begin (generated by tests/bench/$key/run; edits here are overwritten) -->"
  local end="<!-- bench:$key:end -->"
  touch "$out"
  if ! grep -qF "$end" "$out"; then
    {
      cat "$out"
      printf '\n## %s\n\n%s\n%s\n' "$title" "$begin" "$end"
    } >"$out.tmp"
    mv "$out.tmp" "$out"
  fi
  awk -v body="$body" -v begin="$begin" -v end="$end" -v key="<!-- bench:$key:begin" '
    index($0, key) == 1 { print begin; while ((getline l < body) > 0) print l; skip = 1; next }
    index($0, end) == 1 { skip = 0 }
    !skip { print }' "$out" >"$out.tmp"
  mv "$out.tmp" "$out"
  log "updated $out"
}
