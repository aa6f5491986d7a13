# shellcheck shell=bash
# Sourced by scripts/bench.sh --throughput once the upstreams run: issue 16, "at least nginx's
# throughput with full metering on" (bench/README.md, "Throughput against nginx"). Every figure
# is taken next to nginx in the same run, since wall-clock numbers on this shared VM swing by 2x.
#
# 1. Closed loop on 32 connections: `wrk -t1 -c32` POSTs the ~1 KiB chat request, the nginx
#    upstream answers with the 1,008-byte completion. Proxies on CPU 0, wrk and the upstream on
#    CPU 1. Each round starts every target afresh and runs them one after the other, the order
#    rotating by one target per round; the report gives each target's median over the rounds.
#    Targets: nginx (one process), tokentap (one worker, default metering, access log to
#    /dev/null), the same with the access log in a file, and with LD_PRELOAD'd jemalloc and
#    mimalloc (item 4).
# 2. Workers 1 vs 2: the same load from `wrk -t2` with nothing pinned (proxy, wrk and upstream
#    share both CPUs, as a sidecar shares its pod's), tokentap `workers: 1` / `2` against nginx
#    `worker_processes 1` / `2`, in rotating rounds as above.
# 3. System calls per request: `strace -f -c` attached to the warmed-up proxy (all its threads)
#    while `bench_load --requests=N` sends N requests on one keep-alive connection.
# 4. Allocators: tokentap with glibc malloc, LD_PRELOAD=libjemalloc.so.2 and libmimalloc.so.2:
#    req/s and RSS come from item 1; instructions per chat request from callgrind (which does not
#    replace malloc, so the preloaded allocator is what it counts), next to nginx's.

if [ "$smoke" = 1 ]; then
  tp_rounds=1 tp_dur=1 tp_warm=0 sys_warm=10 sys_requests=100
else
  tp_rounds=3 tp_dur=5 tp_warm=1 sys_warm=200 sys_requests=2000
fi
tp_connections=${TOKENTAP_BENCH_CONNECTIONS:-32}  # issue 16 asks for 32
write_wrk_script "$tmp/post.lua"

# Allocators to preload: the sonames Debian's libjemalloc2 and libmimalloc2.0 install.
declare -A alloc_lib=()
alloc_targets=()
for a in jemalloc mimalloc; do
  # (awk reads to the end: a reader that quits early kills ldconfig with SIGPIPE, and pipefail
  # then fails the script.)
  lib=$(ldconfig -p | awk -v so="lib$a.so.2" '$1 == so && lib == "" {lib = $NF} END {print lib}')
  if [ -n "$lib" ]; then
    alloc_lib[$a]=$lib
    alloc_targets+=("tokentap-$a")
  else
    notes+=("lib$a.so.2 is not installed: no $a rows.")
  fi
done
if [ "$have_nginx" = 0 ]; then notes+=("nginx is not installed: no nginx rows, no ratios."); fi

# A proxy's processes: PID and its children (nginx's workers under its master).
tree_pids() {
  echo "$1"
  pgrep -P "$1" || true
}
tree_cpu_ns() {
  local p
  for p in $(tree_pids "$1"); do cat /proc/"$p"/task/*/schedstat 2>/dev/null; done |
    awk '{s += $1} END {printf "%.0f", s}'
}
# tree_kib PID FIELD: FIELD (VmRSS, VmHWM) of /proc/PID/status summed over the processes.
tree_kib() {
  local p
  for p in $(tree_pids "$1"); do cat /proc/"$p"/status 2>/dev/null; done |
    awk -v f="$2:" '$1 == f {s += $2} END {printf "%.0f", s}'
}

# start_target TARGET NAME [LAUNCHER...]: starts the proxy TARGET names (nginx*, tokentap*; a
# -w2 suffix means two workers, -logfile an access log file, -jemalloc / -mimalloc that
# allocator preloaded) as NAME; sets target_pid and target_port.
start_target() {
  local target=$1 name=$2 workers=1 log=/dev/null preload=()
  shift 2
  case $target in *-w2) workers=2 ;; esac
  case $target in
    nginx*)
      nginx_workers=$workers start_nginx_proxy "$name" "$@"
      target_pid=$nginx_pid target_port=$nginx_chat_port
      return ;;
    *-logfile) log=$tmp/$name.access.log ;;
    *-jemalloc | *-mimalloc) preload=(env LD_PRELOAD="${alloc_lib[${target##*-}]}") ;;
  esac
  tokentap_workers=$workers start_tokentap "$name" "$log" "${preload[@]}" "$@"
  target_pid=$tokentap_pid target_port=$tokentap_port
  if [ ${#preload[@]} -gt 0 ] && ! grep -q "lib${target##*-}" "/proc/$target_pid/maps"; then
    echo "bench: $target runs without lib${target##*-} mapped" >&2
    return 1
  fi
}

# tp_run WORKLOAD TARGET ROUND THREADS: starts TARGET, warms it up, runs wrk for tp_dur s on
# tp_connections connections and records req/s, the proxy's CPU time, RSS (idle, and its peak)
# and, for tokentap, how many requests it metered (and logged, with a log file).
tp_run() {
  local workload=$1 target=$2 round=$3 threads=$4 name="$2-$1-r$3" idle cpu0 cpu1 m0 m1 f
  start_target "$target" "$name"
  idle=$(tree_kib "$target_pid" VmRSS)
  if [ "$tp_warm" != 0 ]; then
    "${wrk_pin[@]}" wrk -t"$threads" -c"$tp_connections" -d"${tp_warm}s" -s "$tmp/post.lua" \
      "http://127.0.0.1:$target_port/v1/chat/completions" >/dev/null
  fi
  m0=0
  [ "${target%%-*}" = tokentap ] && m0=$(metric_sum llm_requests_total)
  cpu0=$(tree_cpu_ns "$target_pid")
  "${wrk_pin[@]}" wrk -t"$threads" -c"$tp_connections" -d"${tp_dur}s" -s "$tmp/post.lua" \
    "http://127.0.0.1:$target_port/v1/chat/completions" >"$tmp/$name.wrk"
  cpu1=$(tree_cpu_ns "$target_pid")
  f=$tmp/$name.wrk
  m1=0
  if [ "${target%%-*}" = tokentap ]; then
    # A request is metered just after its response is written: give the last ones (bounded) 5 s.
    for _ in $(seq 100); do
      m1=$(metric_sum llm_requests_total)
      [ $((m1 - m0)) -ge "$(awk '/requests in/ {print $1}' "$f")" ] && break
      sleep 0.05
    done
  fi
  local result
  result="{\"round\":$round,\"threads\":$threads,\"connections\":$tp_connections,\"seconds\":$tp_dur"
  result+=",\"requests\":$(awk '/requests in/ {print $1}' "$f"),\"rps\":$(awk '/^Requests\/sec/ {print $2}' "$f")"
  result+=",\"non2xx\":$(awk '/Non-2xx/ {print $NF}' "$f" | grep . || echo 0)"
  result+=",\"socket_errors\":\"$(sed -n 's/^ *Socket errors: //p' "$f")\""
  result+=",\"cpu_s\":$(awk "BEGIN {print ($cpu1 - $cpu0) / 1e9}"),\"idle_rss_kib\":$idle"
  result+=",\"peak_rss_kib\":$(tree_kib "$target_pid" VmHWM),\"metered\":$((m1 - m0))"
  stop_pid "$target_pid"
  if [ "${target%-*}" = tokentap ] && [ "${target##*-}" = logfile ]; then
    result+=",\"log_lines\":$(wc -l <"$tmp/$name.access.log")"
  fi
  record "$workload" "$target" "$result}"
  echo "  $workload round $round $target: $(awk '/^Requests\/sec/ {print $2}' "$f") req/s" >&2
}

# tp_rounds WORKLOAD THREADS TARGET...: tp_rounds rounds over the targets, rotating the order.
tp_rounds() {
  local workload=$1 threads=$2 r i n
  shift 2
  local targets=("$@")
  n=${#targets[@]}
  for ((r = 1; r <= tp_rounds; r++)); do
    for ((i = 0; i < n; i++)); do
      tp_run "$workload" "${targets[(i + r - 1) % n]}" "$r" "$threads"
    done
  done
}

# --- 1 and 4: 32 connections, proxies pinned ----------------------------------------------------
echo "bench: closed loop on $tp_connections connections (then 64), ${tp_dur}s per run, $tp_rounds round(s)" >&2
wrk_pin=("${pin_load[@]}")
tp_targets=()
[ "$have_nginx" = 1 ] && tp_targets+=(nginx)
tp_targets+=(tokentap tokentap-logfile "${alloc_targets[@]}")
tp_rounds "c$tp_connections" 1 "${tp_targets[@]}"
# nginx's req/s depends on the number of connections far more than tokentap's (at 64 this VM gave
# nginx 28-35k, at 32 19-21k; tokentap 25-29k at either): the default bench's 64 for comparison.
if [ "$tp_connections" != 64 ]; then
  tp_connections=64
  tp_rounds c64 1 "${tp_targets[@]:0:2}"
  tp_connections=${TOKENTAP_BENCH_CONNECTIONS:-32}
fi

# --- 2: workers 1 vs 2, nothing pinned ----------------------------------------------------------
echo "bench: workers 1 vs 2, nothing pinned" >&2
all_cpus=(taskset -c "0-$(($(nproc) - 1))")
saved_pin_proxy=("${pin_proxy[@]}")
pin_proxy=("${all_cpus[@]}")
wrk_pin=("${all_cpus[@]}")
[ "$have_nginx" = 1 ] && taskset -a -p -c "0-$(($(nproc) - 1))" "$chat_upstream_pid" >/dev/null
scale_targets=()
[ "$have_nginx" = 1 ] && scale_targets+=(nginx-w1 nginx-w2)
scale_targets+=(tokentap-w1 tokentap-w2)
tp_rounds scale 2 "${scale_targets[@]}"
pin_proxy=("${saved_pin_proxy[@]}")
[ "$have_nginx" = 1 ] && taskset -a -p -c "$load_cpu" "$chat_upstream_pid" >/dev/null

# --- 3: system calls per request ----------------------------------------------------------------
echo "bench: system calls per request, $sys_requests requests on one connection under strace" >&2
sys_targets=()
[ "$have_nginx" = 1 ] && sys_targets+=(nginx)
sys_targets+=(tokentap)
for t in "${sys_targets[@]}"; do
  start_target "$t" "$t-strace"
  timeout 120 "${pin_load[@]}" "$load" chat --target="127.0.0.1:$target_port" \
    --requests="$sys_warm" >/dev/null
  threads=$(find "/proc/$target_pid/task" -mindepth 1 -maxdepth 1 | wc -l)
  strace -f -c -o "$tmp/strace-$t.txt" -p "$target_pid" 2>"$tmp/strace-$t.err" &
  strace_pid=$!
  pids+=("$strace_pid")
  # strace -f -p attaches every thread of the process, then says "Process N attached".
  wait_for_line "$tmp/strace-$t.err" ' attached'
  out=$(timeout 300 "${pin_load[@]}" "$load" chat --target="127.0.0.1:$target_port" \
    --requests="$sys_requests")
  kill -INT "$strace_pid"
  wait "$strace_pid" 2>/dev/null || true
  record syscalls "$t" "{\"requests\":$sys_requests,\"threads\":$threads,\"strace\":\"$tmp/strace-$t.txt\",\"load\":$out}"
  stop_pid "$target_pid"
  echo "  syscalls $t: $(awk '$NF == "total" {print $4}' "$tmp/strace-$t.txt") calls in $threads threads ($(head -1 "$tmp/strace-$t.err"))" >&2
done

# --- 4: instructions per request by allocator ---------------------------------------------------
if [ "$smoke" = 1 ]; then
  notes+=("Smoke run: no callgrind counts (bench:instructions_smoke covers that method).")
elif ! command -v valgrind >/dev/null; then
  notes+=("valgrind is not installed: no instruction counts per allocator.")
else
  instr_workloads=(chat 200 1000)
  sse_events=200
  # shellcheck source=bench/callgrind.sh
  source "$root/bench/callgrind.sh"
  instr_targets=()
  [ "$have_nginx" = 1 ] && instr_targets+=(nginx)
  instr_targets+=(tokentap "${alloc_targets[@]}")
  for t in "${instr_targets[@]}"; do
    echo "bench: instructions per request, $t under callgrind" >&2
    start_target "$t" "$t-cg" "${callgrind[@]}" --callgrind-out-file="$tmp/cg-$t" \
      --log-file="$tmp/vg-$t.log"
    count_instructions "$t" "$target_pid" "$target_port" "$target_port" /v1/chat/completions
    stop_pid "$target_pid"
  done
fi

versions="$(wrk -v 2>&1 | awk 'NR == 1 {print $1, $2}'), $(strace -V | awk 'NR == 1')"
if command -v valgrind >/dev/null && [ "$smoke" = 0 ]; then versions+=", $(valgrind --version)"; fi
if [ "$have_nginx" = 1 ]; then versions+=", $(nginx -v 2>&1 | sed 's/^nginx version: //')"; fi
for a in "${!alloc_lib[@]}"; do
  pkg=$(dpkg -S "*/${alloc_lib[$a]##*/}" 2>/dev/null | awk -F: 'NR == 1 {print $1}')
  versions+=", $(dpkg-query -W -f='${Package} ${Version}' "$pkg" 2>/dev/null || echo "${alloc_lib[$a]##*/}")"
done
notes+=("Tools: $versions.")
set_report_args
report_args+=(--rounds "$tp_rounds" --seconds "$tp_dur" --connections "$tp_connections")
if [ "$smoke" = 1 ]; then
  python3 bench/throughput_report.py "${report_args[@]}" --check
else
  python3 bench/throughput_report.py "${report_args[@]}" --check --write bench/THROUGHPUT.md
fi
