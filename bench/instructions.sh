# shellcheck shell=bash
# Sourced by scripts/bench.sh --instructions once the upstreams run: instructions per proxied
# request, counted by callgrind, for tokentap and nginx (bench/README.md, "Instructions per
# proxied request").
#
# Wall-clock figures on a shared VM swing by 2x between runs; the number of instructions a proxy
# executes per request does not, and this VM has no hardware counters (perf stat reports
# instructions as <not supported>), so callgrind counts them. Each proxy runs alone under
# callgrind on CPU 0 and is driven on one keep-alive connection, closed loop, by
# `bench_load --requests`. Per workload: W warm-up requests, a callgrind dump, M requests, a
# dump. A dump holds what the process executed since the previous one (all threads, idle timers
# included), so per request = Ir(second dump) / M = (total after W + M - total after W) / M.
# Then the same proxies run without callgrind for the wall-clock figures next to the counts.
#
# With --tracing (tracing=1): the chat workload only, on tokentap with tracing off, on at
# sample_ratio 1.0 and at 0.1, each exporting to bench/otlp_sink.py. The exporter sends from its
# own thread once a second, so before each dump the bench waits until the sink has been quiet
# for 2.5 s (every target alike): each dump then holds the export of its own requests' spans,
# and the spans the sink received in between are recorded with the count.

# Workloads: name, warm-up requests, measured requests.
if [ "$tracing" = 1 ] && [ "$smoke" = 1 ]; then
  instr_workloads=(chat 2 20)
elif [ "$tracing" = 1 ]; then
  instr_workloads=(chat 200 1000)
elif [ "$smoke" = 1 ]; then
  instr_workloads=(chat 2 5 sse 1 2 large 1 3)
else
  instr_workloads=(chat 200 1000 sse 5 50 large 20 200)
fi
sse_events=200

# shellcheck source=bench/callgrind.sh
source "$root/bench/callgrind.sh"

# wall_clock TARGET PID CHAT_PORT SSE_PORT SSE_PATH: the same workloads without callgrind,
# closed loop on one connection for the usual duration, with the proxy's CPU time.
wall_clock() {
  local target=$1 pid=$2 w out i
  shift 2
  for ((i = 0; i < ${#instr_workloads[@]}; i += 3)); do
    w=${instr_workloads[i]}
    instr_load_args "$w" "$@" paced
    out=$(timeout 120 "${pin_load[@]}" "$load" "${load_args[@]}" --duration="$dur" \
      --warmup="$warm" --cpu-pid="$pid")
    record "wall-$w" "$target" "$out"
  done
}

instr_targets=()
# Targets of --tracing: the sample ratio each runs with ("" is tracing off).
declare -A sample_ratio_of=([tokentap-trace-1]=1.0 [tokentap-trace-0.1]=0.1)
if [ "$tracing" = 1 ]; then
  "${pin_load[@]}" python3 "$root/bench/otlp_sink.py" >"$tmp/otlp-sink.out" 2>&1 &
  pids+=($!)
  wait_for_line "$tmp/otlp-sink.out" '"port"'
  otlp_sink_port=$(grep -o '"port": [0-9]*' "$tmp/otlp-sink.out" | grep -o '[0-9]*$')
  instr_targets+=(tokentap tokentap-trace-1 tokentap-trace-0.1)
  if [ "$smoke" = 1 ]; then
    dur=0.3
    warm=0
  fi
elif [ "$smoke" = 1 ]; then
  # Each process takes seconds to start under callgrind: the smoke run checks the mode end to
  # end (counts, dumps, the access-log check, the report) on the target that exercises most.
  # No warm-up for the wall-clock runs: the first 200-event stream is measured, however late a
  # busy machine runs its 1 ms timers (with one it might not end inside a short window).
  instr_targets+=(tokentap-logfile)
  dur=0.3
  warm=0
else
  [ "$have_nginx" = 1 ] && instr_targets+=(nginx)
  instr_targets+=(tokentap tokentap-logfile)
  [ "$have_nginx" = 1 ] || notes+=("nginx is not installed: no nginx rows, no ratios.")
fi
for t in "${instr_targets[@]}"; do
  echo "bench: instructions per request, $t under callgrind" >&2
  launcher=("${callgrind[@]}" --callgrind-out-file="$tmp/cg-$t" --log-file="$tmp/vg-$t.log")
  case $t in
    nginx)
      start_nginx_proxy "nginx-cg" "${launcher[@]}"
      count_instructions "$t" "$nginx_pid" "$nginx_chat_port" "$nginx_sse_port" /v1/chat/completions
      stop_pid "$nginx_pid" ;;
    tokentap | tokentap-trace-*)
      tokentap_sample_ratio=${sample_ratio_of[$t]:-}
      start_tokentap "$t-cg" /dev/null "${launcher[@]}"
      count_instructions "$t" "$tokentap_pid" "$tokentap_port" "$tokentap_port" \
        /sse/v1/chat/completions
      stop_pid "$tokentap_pid"
      tokentap_sample_ratio="" ;;
    tokentap-logfile)
      start_tokentap "$t-cg" "$tmp/access-cg.log" "${launcher[@]}"
      count_instructions "$t" "$tokentap_pid" "$tokentap_port" "$tokentap_port" \
        /sse/v1/chat/completions
      stop_pid "$tokentap_pid"
      # Every request made (warm-up and measured) must have its line in the file.
      made=0
      for ((i = 0; i < ${#instr_workloads[@]}; i += 3)); do
        made=$((made + instr_workloads[i + 1] + instr_workloads[i + 2]))
      done
      record access-log "$t" "{\"requests\":$made,\"lines\":$(wc -l <"$tmp/access-cg.log")}" ;;
  esac
done

echo "bench: wall-clock, ${dur}s per workload" >&2
for t in "${instr_targets[@]}"; do
  case $t in
    nginx)
      start_nginx_proxy "nginx-wall"
      wall_clock "$t" "$nginx_pid" "$nginx_chat_port" "$nginx_sse_port" /v1/chat/completions
      stop_pid "$nginx_pid" ;;
    tokentap | tokentap-logfile | tokentap-trace-*)
      log=/dev/null
      [ "$t" = tokentap-logfile ] && log=$tmp/access-wall.log
      tokentap_sample_ratio=${sample_ratio_of[$t]:-}
      start_tokentap "$t-wall" "$log"
      wall_clock "$t" "$tokentap_pid" "$tokentap_port" "$tokentap_port" /sse/v1/chat/completions
      stop_pid "$tokentap_pid"
      tokentap_sample_ratio="" ;;
  esac
done

versions=$(valgrind --version)
if [ "$have_nginx" = 1 ]; then versions+=", $(nginx -v 2>&1 | sed 's/^nginx version: //')"; fi
notes+=("Tools: $versions.")
set_report_args
report_args+=(--instructions --events-per-stream "$sse_events")
written=bench/PROFILE.md
if [ "$tracing" = 1 ]; then
  report_args+=(--tracing)
  written=bench/TRACING.md
fi
if [ "$smoke" = 1 ]; then
  python3 bench/report.py "${report_args[@]}" --check
else
  python3 bench/report.py "${report_args[@]}" --check --write "$written"
fi
