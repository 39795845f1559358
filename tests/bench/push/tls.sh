# shellcheck shell=bash
# shellcheck disable=SC2016,SC2034,SC2154 # backquotes are markdown; M, WRK_EXTRA and the globals are declared and read by run
# The "tls" phase of tests/bench/push/run (issue #12), sourced by it: the push path over HTTPS
# against plain HTTP in the same run. A second sluice (same binary, same PostgreSQL, same
# settings, plus SLUICE_TLS_CERT/SLUICE_TLS_KEY with an ECDSA P-256 certificate from
# tests/support/make-test-certs) runs beside the plain one; wrk runs alternate between the two,
# each measurement REPEAT times, the best kept:
#   - batch 1 and batch 100 on 50 keep-alive connections (the cost of encrypting the traffic);
#   - batch 1 with a new connection per request (Connection: close: one full handshake each).
# Writes the section "Push over TLS (issue #12)" of OUT (between its own markers) whenever the
# phase ran, also in a partial run: SLUICE_BENCH_PHASES=tls tests/bench/push/run is the command.
#
# Uses run's globals and helpers: TMP PG_URL SLUICE_BIN SLUICE_PID HTTP_PORT DURATION WARMUP
# REPEAT CONNECTIONS EXTRA_ENV OUT ROOT M HARNESS_ERRORS; run_wrk result proc_ticks calc
# reset_table row_count svc_pick_port log die. Sets TLS_SLUICE_PID (run's cleanup stops it).

TLS_SLUICE_PID=
TLS_BATCHES=(1 100)

tls_curl() { curl -sf --max-time 5 --cacert "$TMP/tls/ca.pem" "https://localhost:$TLS_PORT$1"; }

start_tls_sluice() {
  "$ROOT/tests/support/make-test-certs" "$TMP/tls" server >/dev/null
  svc_pick_port TLS_PORT
  TLS_LOG=$TMP/sluice-tls.log
  env -i PATH=/usr/bin:/bin SLUICE_HTTP_ADDR="127.0.0.1:$TLS_PORT" DATABASE_URL="$PG_URL" \
    FILE_BUFFER_DIR="$TMP/buffer-tls" LOG_LEVEL=warn SLUICE_TLS_CERT="$TMP/tls/server.pem" \
    SLUICE_TLS_KEY="$TMP/tls/server.key" "${EXTRA_ENV[@]}" "$SLUICE_BIN" >"$TLS_LOG" 2>&1 &
  TLS_SLUICE_PID=$!
  local deadline=$((SECONDS + 30)) st=
  while ((SECONDS < deadline)); do
    kill -0 "$TLS_SLUICE_PID" 2>/dev/null || die "the TLS sluice exited during start-up (see $TLS_LOG)"
    # As for the plain one: measure only once pushes go to PostgreSQL, not the failover log.
    st=$(tls_curl /api/v1/status/buffers) || st=
    [[ -n $st && $(jq -r .failoverActive <<<"$st") == false ]] && break
    sleep 0.1
  done
  [[ -n $st ]] || die "the TLS sluice did not answer over HTTPS within 30 s (see $TLS_LOG)"
  M[tls_negotiated]=$(openssl s_client -connect "127.0.0.1:$TLS_PORT" -servername localhost \
    -CAfile "$TMP/tls/ca.pem" </dev/null 2>/dev/null |
    awk '/^New, / { sub(/^New, /, ""); print; exit }')
  log "TLS sluice pid $TLS_SLUICE_PID on port $TLS_PORT (${M[tls_negotiated]})"
}

# tls_run MODE BATCH CONN: MODE plain|tls, CONN keep|close; sets M[tls_<MODE>_b<BATCH>_<CONN>_*].
tls_run() {
  local mode=$1 b=$2 conn=$3 key="tls_$1_b$2_$3" pid url out s0 s1 rows0 rows1 req dur
  if [[ $mode == tls ]]; then
    pid=$TLS_SLUICE_PID url="https://localhost:$TLS_PORT/api/v1/push"
  else
    pid=$SLUICE_PID url="http://127.0.0.1:$HTTP_PORT/api/v1/push"
  fi
  WRK_EXTRA=()
  [[ $conn == close ]] && WRK_EXTRA=(-H "Connection: close")
  out=$TMP/wrk-$key.out
  reset_table
  log "tls phase: $mode batch $b ($conn): ${WARMUP}s warm-up, ${DURATION}s measured"
  WRK_URL=$url run_wrk "$b" "$WARMUP" "$out.warmup"
  rows0=$(row_count)
  s0=$(proc_ticks "$pid")
  WRK_URL=$url run_wrk "$b" "$DURATION" "$out"
  s1=$(proc_ticks "$pid")
  sleep 0.5 # responses in flight when wrk stopped still land
  rows1=$(row_count)
  WRK_EXTRA=()
  req=$(result "$out" requests)
  dur=$(result "$out" duration_us)
  local msgs non2xx sockerr
  msgs=$(calc "$req * $b / ($dur / 1e6)" 0)
  non2xx=$(result "$out" status_errors)
  sockerr=$(($(result "$out" connect_errors) + $(result "$out" read_errors) +
    $(result "$out" write_errors) + $(result "$out" timeouts)))
  ((non2xx == 0 && sockerr == 0)) ||
    HARNESS_ERRORS+=("tls phase $mode batch $b $conn: $non2xx non-2xx, $sockerr socket errors")
  ((rows1 - rows0 >= (req - non2xx) * b)) ||
    HARNESS_ERRORS+=("tls phase $mode batch $b $conn: $((rows1 - rows0)) rows for $req answers")
  M[${key}_runs]+="${M[${key}_runs]:+, }$msgs"
  if [[ -z ${M[${key}_msgs]:-} ]] || ((msgs > M[${key}_msgs])); then
    M[${key}_msgs]=$msgs
    M[${key}_p50_ms]=$(calc "$(result "$out" p50_us) / 1000" 2)
    M[${key}_p99_ms]=$(calc "$(result "$out" p99_us) / 1000" 2)
    M[${key}_us]=$(calc "($s1 - $s0) * 1e6 / $CLK_TCK / ($req * $b)" 1)
  fi
}

bench_tls() {
  start_tls_sluice
  M[tls_load_start]=$(cut -d' ' -f1-3 /proc/loadavg)
  local r b mode
  for ((r = 1; r <= REPEAT; r++)); do
    for b in "${TLS_BATCHES[@]}"; do
      for mode in plain tls; do tls_run "$mode" "$b" keep; done
    done
    for mode in plain tls; do tls_run "$mode" 1 close; done
  done
  M[tls_load_end]=$(cut -d' ' -f1-3 /proc/loadavg)
  stop_pid "$TLS_SLUICE_PID" 20
  TLS_SLUICE_PID=
  tls_report
  # A run with errors writes no figures (run reports the errors and fails at its end).
  if ((${#HARNESS_ERRORS[@]} == 0)); then
    tls_write_markdown
  fi
}

tls_row() { # LABEL KEY_SUFFIX
  local p="tls_plain_$2" t="tls_tls_$2"
  printf '| %s | %s | %s | %s %% | %s / %s | %s / %s | %s / %s |\n' "$1" "${M[${p}_msgs]}" \
    "${M[${t}_msgs]}" "$(calc "100 * ${M[${t}_msgs]} / ${M[${p}_msgs]}" 0)" \
    "${M[${p}_p50_ms]}" "${M[${t}_p50_ms]}" "${M[${p}_p99_ms]}" "${M[${t}_p99_ms]}" \
    "${M[${p}_us]}" "${M[${t}_us]}"
}

tls_table() {
  printf '| push | HTTP msg/s | HTTPS msg/s | HTTPS / HTTP | p50 ms HTTP / HTTPS | p99 ms HTTP / HTTPS | sluice CPU µs per message HTTP / HTTPS |\n'
  printf '| --- | ---: | ---: | ---: | --- | --- | --- |\n'
  tls_row "batch 1, 50 keep-alive connections" b1_keep
  tls_row "batch 100, 50 keep-alive connections" b100_keep
  tls_row "batch 1, a new connection per request (TLS: a full handshake each)" b1_close
}

tls_report() {
  printf '\nPush over TLS (same run, %s):\n' "${M[tls_negotiated]}"
  tls_table
}

tls_write_markdown() {
  [[ -n $OUT ]] || return 0
  local key=push-tls body=$TMP/tls.md
  local begin="<!-- bench:$key:begin (generated by tests/bench/push/run, phase tls; edits here are overwritten) -->"
  local end="<!-- bench:$key:end -->"
  {
    printf 'Generated by `SLUICE_BENCH_PHASES=tls tests/bench/push/run` on %s, commit %s, on %s × %s\n' \
      "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
      "$(nproc)" "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    printf '(load average %s at the start of the phase, %s at its end). Two sluice processes of the\n' \
      "${M[tls_load_start]}" "${M[tls_load_end]}"
    printf 'same binary and settings on the same PostgreSQL, one with `SLUICE_TLS_CERT`/`SLUICE_TLS_KEY`\n'
    printf '(ECDSA P-256 certificate; negotiated: %s); wrk `-t1 -c%s`, %s s per run after %s s of\n' \
      "${M[tls_negotiated]}" "$CONNECTIONS" "$DURATION" "$WARMUP"
    printf 'warm-up, the runs alternating between the two, best of %s. Messages/s of every run:\n' "$REPEAT"
    printf 'batch 1 HTTP %s, HTTPS %s; batch 100 HTTP %s, HTTPS %s; new connections HTTP %s, HTTPS %s.\n' \
      "${M[tls_plain_b1_keep_runs]}" "${M[tls_tls_b1_keep_runs]}" "${M[tls_plain_b100_keep_runs]}" \
      "${M[tls_tls_b100_keep_runs]}" "${M[tls_plain_b1_close_runs]}" "${M[tls_tls_b1_close_runs]}"
    printf 'Durable pushes of the ≈200-byte payload as above; every answered item was in the table.\n\n'
    tls_table
  } >"$body"
  if ! grep -qF "$end" "$OUT"; then
    {
      cat "$OUT"
      printf '\n## Push over TLS (issue #12)\n\n%s\n%s\n' "$begin" "$end"
    } >"$OUT.tmp"
    mv "$OUT.tmp" "$OUT"
  fi
  awk -v body="$body" -v begin="$begin" -v end="$end" -v key="<!-- bench:$key:begin" '
    index($0, key) == 1 { print begin; while ((getline l < body) > 0) print l; skip = 1; next }
    index($0, end) == 1 { skip = 0 }
    !skip { print }' "$OUT" >"$OUT.tmp"
  mv "$OUT.tmp" "$OUT"
  log "updated $OUT (Push over TLS)"
}
