# shellcheck shell=bash
# Shared by tests/run, tests/support/pg-control, tests/support/rabbitmq-control and
# deploy/local/run: install the Debian packages, start and stop a private PostgreSQL 15 and a
# private RabbitMQ node. Source it; it defines functions and a few variables only.
#
# Every service is addressed by its own directory, and every process is stopped by the pid it
# recorded there, so several instances (CI, a developer's shared dev services, deploy/local)
# can run side by side without touching each other.
#
# Layout of a PostgreSQL home directory H (owned by the postgres user):
#   H/data          the cluster (PGDATA); its postgresql.conf holds port and socket dir
#   H/run           unix socket directory
#   H/postgres.log  server log
# Layout of a RabbitMQ directory R (owned by the rabbitmq user):
#   R/home          HOME of the node and of its CLI calls: holds a private .erlang.cookie
#   R/mnesia        RABBITMQ_MNESIA_BASE; R/mnesia/<node>.pid is the pid of the Erlang VM
#   R/log           RABBITMQ_LOG_BASE, plus startup.log and epmd.log
#   R/epmd.pid      the private epmd (own port, so a system or dev epmd is never shared)
#   R/rabbitmq.conf, R/enabled_plugins, R/rabbitmq-env.conf: isolate it from /etc/rabbitmq

SVC_PG_BIN=${SVC_PG_BIN:-/usr/lib/postgresql/15/bin}
SVC_RABBITMQ_BIN=${SVC_RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}

# Adding a library? Add it here and to both stages of docker/Dockerfile (its runtime package).
# shellcheck disable=SC2034 # the package lists are read by the scripts that source this file
SVC_BUILD_PACKAGES=(build-essential cmake ninja-build ccache g++ libboost1.81-dev
  nlohmann-json3-dev libspdlog-dev libpq-dev librabbitmq-dev libssl-dev libjemalloc-dev
  libyaml-cpp-dev)
# shellcheck disable=SC2034
SVC_SERVICE_PACKAGES=(postgresql-15 postgresql-client-15 rabbitmq-server erlang-base curl procps
  ca-certificates util-linux iproute2 openssl)
# systemd: its EnvironmentFile= parser is the reference the --config reader is tested against.
# shellcheck disable=SC2034
SVC_TEST_PACKAGES=(googletest libgtest-dev prometheus clang-format shellcheck systemd)

svc_log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
svc_die() {
  svc_log "error: $*"
  exit 1
}

# Missing packages, one per line. dpkg-query answers in milliseconds, so a rerun on a machine
# that already has everything never touches apt.
svc_missing_packages() {
  local p status
  for p in "$@"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || printf '%s\n' "$p"
  done
}

# svc_ensure_packages [--node] PACKAGE...
# --node also wants node and npm commands. They are checked as commands, not packages: the
# machine image may carry NodeSource's nodejs, which bundles npm and conflicts with Debian's npm.
svc_ensure_packages() {
  local want_node=0
  if [[ ${1:-} == --node ]]; then
    want_node=1
    shift
  fi
  local -a missing
  mapfile -t missing < <(svc_missing_packages "$@")
  if ((want_node)); then
    command -v node >/dev/null || missing+=(nodejs)
    command -v npm >/dev/null || missing+=(npm)
  fi
  if ((${#missing[@]} == 0)); then
    svc_log "packages: all present"
    return 0
  fi
  svc_log "packages: installing ${missing[*]}"
  ((EUID == 0)) || svc_die "not root: install these packages first: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  local attempt
  for attempt in 1 2 3; do
    if apt-get -o DPkg::Lock::Timeout=300 update -qq; then
      break
    fi
    ((attempt < 3)) || svc_die "apt-get update failed"
    sleep $((attempt * 5))
  done
  for attempt in 1 2 3; do
    # -y also accepts removals: libboost1.81-dev replaces a conflicting libboost1.74-dev.
    if apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}"; then
      break
    fi
    ((attempt < 3)) || svc_die "apt-get install failed"
    sleep $((attempt * 5))
  done
  mapfile -t missing < <(svc_missing_packages "$@")
  ((${#missing[@]} == 0)) || svc_die "still missing after install: ${missing[*]}"
}

# svc_setup_ccache SOURCE_ROOT: one compiler cache for every build of the tree on this machine.
svc_setup_ccache() {
  export CCACHE_DIR=${CCACHE_DIR:-/var/cache/sluice-ccache}
  if ! mkdir -p "$CCACHE_DIR" 2>/dev/null || [[ ! -w $CCACHE_DIR ]]; then
    CCACHE_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/sluice-ccache
    mkdir -p "$CCACHE_DIR"
  fi
  # CI builds a fresh clone in a new folder each time: hash paths relative to the checkout so
  # the cache still hits.
  export CCACHE_BASEDIR=$1 CCACHE_NOHASHDIR=1 CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
}

# svc_as USER COMMAND...: PostgreSQL refuses to run as root, so as root the service programs
# run as their own user; anyone else runs them as themselves. setpriv execs (no extra process),
# so $! of a backgrounded svc_as is the service's own pid. COMMAND must be a program, not a
# shell function.
svc_as() {
  local user=$1
  shift
  if ((EUID == 0)) && [[ $user != root ]]; then
    setpriv --reuid="$user" --regid="$user" --init-groups -- "$@"
  else
    "$@"
  fi
}

# The user a service runs as: its own system user when we are root, else ourselves.
svc_service_user() {
  if ((EUID == 0)); then
    printf '%s\n' "$1"
  else
    id -un
  fi
}

svc_port_in_use() {
  local port=$1
  if command -v ss >/dev/null; then
    # Any socket on the port counts, TIME_WAIT included: binding would fail all the same.
    [[ -n $(ss -Htan "( sport = :$port )" 2>/dev/null) ]] && return 0
  fi
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

# svc_port_listening PORT: something listens on it (sockets lingering in TIME_WAIT do not stop a
# server that sets SO_REUSEADDR, as PostgreSQL, RabbitMQ and epmd do).
svc_port_listening() {
  local port=$1
  if command -v ss >/dev/null; then
    [[ -n $(ss -Htln "( sport = :$port )" 2>/dev/null) ]]
    return
  fi
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

# svc_pick_port VAR: a free loopback port below the kernel's ephemeral range, so outgoing
# connections (ours, the CLI tools', the tests') never take it between pick and bind.
SVC_TAKEN_PORTS=" "
svc_pick_port() {
  local _lo _hi _port _tries
  read -r _lo _ </proc/sys/net/ipv4/ip_local_port_range
  _hi=$((_lo > 12000 ? _lo - 1 : 65000))
  _lo=$((_lo > 12000 ? 10000 : 61000))
  for ((_tries = 0; _tries < 500; _tries++)); do
    _port=$((_lo + (RANDOM * 32768 + RANDOM) % (_hi - _lo)))
    [[ $SVC_TAKEN_PORTS == *" $_port "* ]] && continue
    svc_port_in_use "$_port" && continue
    SVC_TAKEN_PORTS+="$_port "
    printf -v "$1" '%s' "$_port"
    return 0
  done
  svc_die "no free port found"
}

# svc_wait_port PORT SECONDS [PID]: until something accepts on 127.0.0.1:PORT; fails early if
# PID (the process that should open it) dies.
svc_wait_port() {
  local port=$1 deadline=$((SECONDS + $2)) pid=${3:-}
  while ((SECONDS < deadline)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    if [[ -n $pid ]] && ! svc_proc_alive "$pid"; then
      return 1
    fi
    sleep 0.2
  done
  return 1
}

# svc_read_pid PIDFILE: prints the pid in PIDFILE (RabbitMQ writes it without a newline).
svc_read_pid() {
  local pid
  [[ -r $1 ]] || return 1
  pid=$(<"$1") || return 1
  pid=${pid%%[[:space:]]*}
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  printf '%s\n' "$pid"
}

# svc_proc_alive PID: runs and is not a zombie (an orphan may wait a while to be reaped).
svc_proc_alive() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ $state != Z && $state != X ]]
}

# svc_pid_alive PIDFILE [PATTERN]: the pid in PIDFILE runs and, if given, its command line
# contains PATTERN (guards against a recycled pid).
svc_pid_alive() {
  local file=$1 pattern=${2:-} pid
  pid=$(svc_read_pid "$file") || return 1
  svc_proc_alive "$pid" || return 1
  [[ -z $pattern ]] && return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern"
}

# svc_stop_pid PIDFILE SECONDS [PATTERN]: SIGTERM, wait up to SECONDS, then SIGKILL.
svc_stop_pid() {
  local file=$1 deadline=$((SECONDS + $2)) pattern=${3:-} pid
  svc_pid_alive "$file" "$pattern" || return 0
  pid=$(svc_read_pid "$file") || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  while svc_proc_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      svc_log "pid $pid did not stop in time: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
      break
    fi
    sleep 0.1
  done
  return 0
}

svc_tail_log() {
  local file=$1 lines=${2:-40}
  [[ -r $file ]] || return 0
  printf '%s\n' "---- last $lines lines of $file" >&2
  tail -n "$lines" "$file" >&2 || true
  printf '%s\n' "----" >&2
}

## PostgreSQL

svc_pg_home() { dirname "$1"; }
svc_pg_log() { printf '%s/postgres.log\n' "$(svc_pg_home "$1")"; }

# svc_pg_init PGDATA PORT [SETTING=VALUE...]: a new cluster with trust auth for user postgres,
# listening on 127.0.0.1:PORT and a socket dir beside PGDATA. The settings go into its
# postgresql.conf, so later starts need nothing but PGDATA.
svc_pg_init() {
  local data=$1 port=$2
  shift 2
  local home user
  home=$(svc_pg_home "$data")
  user=$(svc_service_user postgres)
  mkdir -p "$home/run"
  chown "$user:" "$home" "$home/run"
  chmod 700 "$home"
  (cd / && svc_as "$user" "$SVC_PG_BIN/initdb" -D "$data" -U postgres -A trust --no-sync \
    -E UTF8 --no-locale) >"$home/initdb.log" 2>&1 || {
    svc_tail_log "$home/initdb.log"
    return 1
  }
  {
    printf '\n# set by sluice services.sh\n'
    printf "port = %s\n" "$port"
    printf "listen_addresses = '127.0.0.1'\n"
    printf "unix_socket_directories = '%s'\n" "$home/run"
    printf "log_line_prefix = '%%m [%%p] '\n"
    local kv
    for kv in "$@"; do
      printf '%s = %s\n' "${kv%%=*}" "${kv#*=}"
    done
  } >>"$data/postgresql.conf"
}

svc_pg_port() {
  sed -nE 's/^port = ([0-9]+).*/\1/p' "$1/postgresql.conf" | tail -n 1
}

svc_pg_running() {
  local data=$1 user
  user=$(svc_service_user postgres)
  [[ -f $data/postmaster.pid ]] || return 1
  (cd / && svc_as "$user" "$SVC_PG_BIN/pg_ctl" -D "$data" status) >/dev/null 2>&1
}

# svc_pg_start PGDATA [SECONDS]: start and wait until pg_isready answers.
svc_pg_start() {
  local data=$1 timeout=${2:-60} user port log deadline
  user=$(svc_service_user postgres)
  port=$(svc_pg_port "$data")
  log=$(svc_pg_log "$data")
  [[ -n $port ]] || svc_die "no port in $data/postgresql.conf"
  if ! svc_pg_running "$data"; then
    # pg_ctl daemonizes postgres with its output in the log; pg_ctl's own output goes to a file
    # too, so a caller's pipe (ctest's, CI's) never stays open behind the server.
    (cd / && svc_as "$user" "$SVC_PG_BIN/pg_ctl" -D "$data" -l "$log" -w -t "$timeout" start) \
      </dev/null >>"$(svc_pg_home "$data")/pg_ctl.log" 2>&1 || {
      svc_log "postgres: start failed (data=$data)"
      svc_tail_log "$(svc_pg_home "$data")/pg_ctl.log" 10
      svc_tail_log "$log"
      return 1
    }
  fi
  deadline=$((SECONDS + timeout))
  until pg_isready -q -h 127.0.0.1 -p "$port" -t 2; do
    if ((SECONDS >= deadline)); then
      svc_log "postgres: not ready after ${timeout}s (port=$port)"
      svc_tail_log "$log"
      return 1
    fi
    sleep 0.1
  done
}

# svc_pg_stop PGDATA [fast|immediate]: fast is a clean shutdown; immediate is a crash (the
# next start runs WAL recovery).
svc_pg_stop() {
  local data=$1 mode=${2:-fast} user pid
  user=$(svc_service_user postgres)
  [[ -f $data/postmaster.pid ]] || return 0
  if (cd / && svc_as "$user" "$SVC_PG_BIN/pg_ctl" -D "$data" -m "$mode" -w -t 60 stop) \
    </dev/null >/dev/null 2>&1; then
    return 0
  fi
  pid=$(svc_read_pid "$data/postmaster.pid") || return 0
  if svc_proc_alive "$pid"; then
    svc_log "postgres: pg_ctl stop failed, SIGKILL $pid"
    kill -KILL "$pid" 2>/dev/null || true
  fi
}

# svc_pg_psql PGDATA ARGS...: psql as the postgres superuser over TCP.
svc_pg_psql() {
  local data=$1
  shift
  psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(svc_pg_port "$data")" -U postgres "$@"
}

## RabbitMQ
# A node is described by these variables (set them before calling the functions):
#   SVC_RMQ_DIR SVC_RMQ_NODE SVC_RMQ_PORT SVC_RMQ_DIST_PORT SVC_RMQ_EPMD_PORT

svc_rmq_check_vars() {
  local v
  for v in SVC_RMQ_DIR SVC_RMQ_NODE SVC_RMQ_PORT SVC_RMQ_DIST_PORT SVC_RMQ_EPMD_PORT; do
    [[ -n ${!v:-} ]] || svc_die "$v is not set"
  done
}

svc_rmq_pidfile() { printf '%s/mnesia/%s.pid\n' "$SVC_RMQ_DIR" "$SVC_RMQ_NODE"; }

# svc_rmq_env_args: sets SVC_RMQ_ENV to an `env` command line holding the environment of the node
# and of the CLI tools that talk to it. ERL_EPMD_PORT points both at the private epmd.
svc_rmq_env_args() {
  SVC_RMQ_ENV=(env HOME="$SVC_RMQ_DIR/home"
    ERL_EPMD_PORT="$SVC_RMQ_EPMD_PORT"
    ERL_EPMD_ADDRESS=127.0.0.1
    RABBITMQ_NODENAME="$SVC_RMQ_NODE"
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    RABBITMQ_NODE_PORT="$SVC_RMQ_PORT"
    RABBITMQ_DIST_PORT="$SVC_RMQ_DIST_PORT"
    RABBITMQ_MNESIA_BASE="$SVC_RMQ_DIR/mnesia"
    RABBITMQ_LOG_BASE="$SVC_RMQ_DIR/log"
    RABBITMQ_PID_FILE="$(svc_rmq_pidfile)"
    RABBITMQ_CONFIG_FILE="$SVC_RMQ_DIR/rabbitmq.conf"
    RABBITMQ_ADVANCED_CONFIG_FILE="$SVC_RMQ_DIR/advanced.config"
    RABBITMQ_CONF_ENV_FILE="$SVC_RMQ_DIR/rabbitmq-env.conf"
    RABBITMQ_ENABLED_PLUGINS_FILE="$SVC_RMQ_DIR/enabled_plugins"
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}")
}

# svc_rmq_ctl TOOL ARGS...: rabbitmqctl, rabbitmq-diagnostics, ... against this node.
svc_rmq_ctl() {
  svc_rmq_check_vars
  local tool=$1
  shift
  svc_rmq_env_args
  (cd "$SVC_RMQ_DIR" && svc_as "$(svc_service_user rabbitmq)" \
    "${SVC_RMQ_ENV[@]}" "$SVC_RABBITMQ_BIN/$tool" -n "$SVC_RMQ_NODE" "$@")
}

# svc_rmq_prepare: directories, a private cookie and config files; keeps what already exists.
svc_rmq_prepare() {
  svc_rmq_check_vars
  local user
  user=$(svc_service_user rabbitmq)
  mkdir -p "$SVC_RMQ_DIR/home" "$SVC_RMQ_DIR/mnesia" "$SVC_RMQ_DIR/log"
  if [[ ! -s $SVC_RMQ_DIR/home/.erlang.cookie ]]; then
    (umask 077 && od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$SVC_RMQ_DIR/home/.erlang.cookie")
  fi
  chmod 400 "$SVC_RMQ_DIR/home/.erlang.cookie"
  [[ -f $SVC_RMQ_DIR/enabled_plugins ]] || printf '[].\n' >"$SVC_RMQ_DIR/enabled_plugins"
  [[ -f $SVC_RMQ_DIR/rabbitmq-env.conf ]] || : >"$SVC_RMQ_DIR/rabbitmq-env.conf"
  if [[ ! -f $SVC_RMQ_DIR/rabbitmq.conf ]]; then
    cat >"$SVC_RMQ_DIR/rabbitmq.conf" <<'EOF'
loopback_users.guest = true
log.console = false
log.file.level = info
disk_free_limit.absolute = 50MB
EOF
  fi
  chown -R "$user:" "$SVC_RMQ_DIR"
}

# svc_epmd_start: our own epmd on SVC_RMQ_EPMD_PORT, loopback only, in the foreground of its
# own session so its pid is $! and nothing else ever shares it.
svc_epmd_start() {
  svc_rmq_check_vars
  local pidfile=$SVC_RMQ_DIR/epmd.pid user deadline
  svc_pid_alive "$pidfile" epmd && return 0
  user=$(svc_service_user rabbitmq)
  local -a as=()
  ((EUID == 0)) && as=(setpriv --reuid="$user" --regid="$user" --init-groups --)
  (cd "$SVC_RMQ_DIR" && exec setsid "${as[@]}" epmd -port "$SVC_RMQ_EPMD_PORT" \
    -address 127.0.0.1) </dev/null >>"$SVC_RMQ_DIR/log/epmd.log" 2>&1 &
  printf '%s\n' "$!" >"$pidfile"
  deadline=$((SECONDS + 10))
  until epmd -port "$SVC_RMQ_EPMD_PORT" -names >/dev/null 2>&1; do
    if ((SECONDS >= deadline)) || ! svc_pid_alive "$pidfile"; then
      svc_log "epmd: did not start on port $SVC_RMQ_EPMD_PORT"
      svc_tail_log "$SVC_RMQ_DIR/log/epmd.log"
      return 1
    fi
    sleep 0.1
  done
}

svc_epmd_stop() {
  svc_stop_pid "$SVC_RMQ_DIR/epmd.pid" 10 epmd
  rm -f "$SVC_RMQ_DIR/epmd.pid"
}

svc_rmq_running() {
  svc_rmq_check_vars
  svc_pid_alive "$(svc_rmq_pidfile)" beam
}

# svc_rmq_start [SECONDS]: start the node (and its epmd) and wait until it has booted.
svc_rmq_start() {
  svc_rmq_check_vars
  local timeout=${1:-120} user wrapper
  if svc_rmq_running; then
    svc_rmq_wait "$timeout"
    return
  fi
  svc_rmq_prepare
  svc_epmd_start || return 1
  user=$(svc_service_user rabbitmq)
  rm -f "$(svc_rmq_pidfile)"
  # setsid: a Ctrl-C in the caller's terminal must not reach the broker; the caller stops it.
  local -a as=()
  ((EUID == 0)) && as=(setpriv --reuid="$user" --regid="$user" --init-groups --)
  svc_rmq_env_args
  (cd "$SVC_RMQ_DIR" && exec setsid "${as[@]}" "${SVC_RMQ_ENV[@]}" \
    "$SVC_RABBITMQ_BIN/rabbitmq-server") </dev/null >>"$SVC_RMQ_DIR/log/startup.log" 2>&1 &
  wrapper=$!
  printf '%s\n' "$wrapper" >"$SVC_RMQ_DIR/server.pid"
  svc_rmq_wait "$timeout"
}

# svc_rmq_wait [SECONDS]: the AMQP port accepts (cheap to poll), then await_startup confirms the
# boot finished.
svc_rmq_wait() {
  local timeout=${1:-120} wrapper
  wrapper=$(svc_read_pid "$SVC_RMQ_DIR/server.pid") || wrapper=
  if ! svc_wait_port "$SVC_RMQ_PORT" "$timeout" "$wrapper"; then
    svc_log "rabbitmq: port $SVC_RMQ_PORT not open after ${timeout}s or the node exited"
    svc_tail_log "$SVC_RMQ_DIR/log/startup.log"
    svc_tail_log "$SVC_RMQ_DIR/log/$SVC_RMQ_NODE.log"
    return 1
  fi
  if ! svc_rmq_ctl rabbitmqctl -q await_startup --timeout "$timeout" >/dev/null 2>&1; then
    svc_log "rabbitmq: await_startup failed"
    svc_tail_log "$SVC_RMQ_DIR/log/$SVC_RMQ_NODE.log"
    return 1
  fi
}

# svc_rmq_stop [SECONDS]: SIGTERM to the VM (a clean shutdown, about a second), then wait for
# the start wrapper too. The epmd stays: svc_epmd_stop ends it.
svc_rmq_stop() {
  svc_rmq_check_vars
  local timeout=${1:-60}
  svc_stop_pid "$(svc_rmq_pidfile)" "$timeout" beam
  svc_stop_pid "$SVC_RMQ_DIR/server.pid" 10 rabbitmq-server
  rm -f "$(svc_rmq_pidfile)" "$SVC_RMQ_DIR/server.pid"
}
