# shellcheck shell=bash
# Sourced by bench/instructions.sh and bench/throughput.sh: counting a proxy's instructions per
# request with callgrind (bench/README.md, "Instructions per proxied request"). The callers set
# instr_workloads (name, warm-up requests, measured requests, repeated), sse_events and tracing.
#
# Callgrind does not replace malloc (only memcheck, massif, helgrind, drd and dhat preload an
# allocator of their own), so the allocator the proxy runs with, glibc's or one given with
# LD_PRELOAD, is what gets counted.

# instr_load_args WORKLOAD CHAT_PORT SSE_PORT SSE_PATH [paced]: bench_load's arguments in
# load_args. A model server flushes each event on its own, so a proxy reads each in a read of
# its own. Counting, the stream is in lockstep (bench_upstream --lockstep): the next event leaves
# the upstream only once the client has the previous one, so that holds however slowly the proxy
# runs under callgrind or however long a busy machine deschedules it; paced streams (1 ms apart)
# got coalesced into fewer reads and nginx's count moved by up to 17% between runs. The
# wall-clock runs pace the same events 1 ms apart.
instr_load_args() {
  case $1 in
    chat) load_args=(chat --target="127.0.0.1:$2") ;;
    sse)
      load_args=(stream --target="127.0.0.1:$3" --path="$4" --events="$sse_events")
      if [ "${5:-}" = paced ]; then
        load_args+=(--interval-ms=1)
      else
        load_args+=(--interval-ms=0 --lockstep="$tmp/lockstep")
      fi ;;
    large) load_args=(chat --target="127.0.0.1:$2" --body-bytes=65536) ;;
  esac
}

# callgrind_dump PID FILE: asks callgrind in PID to dump (and zero) its counters; waits
# (bounded) until FILE is written.
callgrind_dump() {
  callgrind_control -d "$1" >/dev/null 2>&1
  for _ in $(seq 600); do
    if grep -q '^totals:' "$2" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "bench: callgrind in $1 wrote no $2" >&2
  return 1
}

# sink_spans: spans the OTLP sink received so far, once it has been quiet (no export in flight,
# none answered) for 2.5 s: 2.5 times the exporter's flush interval. Bounded: 120 s.
sink_spans() {
  local stats spans
  sleep 2.5
  for _ in $(seq 1200); do
    stats=$(curl -s "http://127.0.0.1:$otlp_sink_port/stats")
    spans=$(python3 -c 'import json, sys
s = json.loads(sys.argv[1])
print(s["spans"] if s["in_flight"] == 0 and s["idle_ms"] >= 2500 else "")' "$stats")
    if [ -n "$spans" ]; then
      echo "$spans"
      return 0
    fi
    sleep 0.1
  done
  echo "bench: the OTLP sink never went quiet: $stats" >&2
  return 1
}

# count_instructions TARGET PID CHAT_PORT SSE_PORT SSE_PATH: the workloads against a proxy
# running under callgrind with --callgrind-out-file=$tmp/cg-TARGET.
count_instructions() {
  local target=$1 pid=$2 dumps=0 i w warm n out ir spans0 spans extra
  shift 2
  for ((i = 0; i < ${#instr_workloads[@]}; i += 3)); do
    w=${instr_workloads[i]} warm=${instr_workloads[i + 1]} n=${instr_workloads[i + 2]}
    instr_load_args "$w" "$@"
    timeout 600 "${pin_load[@]}" "$load" "${load_args[@]}" --requests="$warm" >"$tmp/warm.json"
    [ "$tracing" = 1 ] && spans0=$(sink_spans)
    dumps=$((dumps + 1))
    callgrind_dump "$pid" "$tmp/cg-$target.$dumps"
    out=$(timeout 600 "${pin_load[@]}" "$load" "${load_args[@]}" --requests="$n")
    extra=""
    if [ "$tracing" = 1 ]; then
      spans=$(sink_spans)
      extra=",\"spans\":$((spans - spans0)),\"sample_ratio\":${tokentap_sample_ratio:-0}"
    fi
    dumps=$((dumps + 1))
    callgrind_dump "$pid" "$tmp/cg-$target.$dumps"
    ir=$(sed -n 's/^summary: //p' "$tmp/cg-$target.$dumps")
    record "instr-$w" "$target" "{\"requests\":$n,\"warmup\":$warm,\"instructions\":$ir,\"profile\":\"$tmp/cg-$target.$dumps\",\"load\":$out$extra}"
    echo "  $w $target: $((ir / n)) instructions per request" >&2
  done
}

callgrind=(valgrind --tool=callgrind --dump-instr=no --collect-atstart=yes)
