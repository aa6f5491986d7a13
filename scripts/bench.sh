#!/usr/bin/env bash
# The proxy benchmark: tokentap against direct traffic and nginx, in one run (bench/README.md).
#
#   bash scripts/bench.sh            # full run (~4 min): builds, runs every workload, prints a
#                                    # Markdown report and writes bench/RESULTS.md
#   bash scripts/bench.sh --smoke    # a few seconds, checks that every workload runs and that
#                                    # metering matches what the upstream served; writes nothing
#   bash scripts/bench.sh --instructions  # instructions per proxied request (callgrind) for
#                                    # tokentap and nginx, with wall-clock figures next to them;
#                                    # ~5 min, writes bench/PROFILE.md (with --smoke: a few
#                                    # requests, writes nothing; exits 77 without valgrind)
#   bash scripts/bench.sh --tracing  # what tracing costs: --instructions' method on the chat
#                                    # workload with tracing off, on at sample_ratio 1.0 and at
#                                    # 0.1, exporting to a local OTLP sink (bench/otlp_sink.py);
#                                    # ~2 min, writes bench/TRACING.md (with --smoke: a few
#                                    # requests, writes nothing; exits 77 without valgrind)
#   bash scripts/bench.sh --throughput  # issue 16: closed-loop throughput on 32 connections
#                                    # against nginx in alternating rounds, workers 1 vs 2,
#                                    # system calls per request (strace) and LD_PRELOAD'd
#                                    # allocators (jemalloc, mimalloc: req/s, RSS, callgrind
#                                    # instructions); ~6 min, writes bench/THROUGHPUT.md (with
#                                    # --smoke: ~15 s, writes nothing; exits 77 without wrk or
#                                    # strace)
#   --bin-dir DIR                    # use binaries already built in DIR (the ctest smoke test)
#
# Everything binds 127.0.0.1 on ports the OS picks, every run is bounded in time, and every
# process started here is stopped on exit. Proxies run on CPU 0, load and upstreams on CPU 1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

smoke=0
instructions=0
tracing=0
throughput=0
bin_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --instructions) instructions=1 ;;
    --tracing) tracing=1; instructions=1 ;;
    --throughput) throughput=1 ;;
    --bin-dir) bin_dir=$2; shift ;;
    *) echo "usage: bash scripts/bench.sh [--smoke] [--instructions | --tracing | --throughput] [--bin-dir DIR]" >&2; exit 2 ;;
  esac
  shift
done

if [ "$instructions" = 1 ] && [ "$smoke" = 1 ] && ! command -v valgrind >/dev/null; then
  echo "bench: valgrind is not installed: the instruction count was skipped" >&2
  exit 77  # ctest: skipped
fi
if [ "$throughput" = 1 ] && [ "$smoke" = 1 ] && ! { command -v wrk && command -v strace; } >/dev/null; then
  echo "bench: wrk or strace is not installed: the throughput smoke run was skipped" >&2
  exit 77  # ctest: skipped
fi
if [ -z "$bin_dir" ]; then
  if [ "$smoke" = 0 ]; then
    if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null ||
      { [ "$instructions" = 1 ] && ! command -v valgrind >/dev/null; }; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx wrk valgrind >/dev/null
    fi
    # --throughput also counts system calls and tries the allocators Debian packages.
    if [ "$throughput" = 1 ] && { ! command -v strace >/dev/null || ! command -v valgrind >/dev/null ||
      [ "$(ldconfig -p | grep -cE 'lib(je|mi)malloc\.so\.2 ')" -lt 2 ]; }; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace valgrind \
        libjemalloc2 libmimalloc2.0 >/dev/null
    fi
  fi
  cmake --preset default >/dev/null
  cmake --build --preset default -j "$(nproc)" --target tokentap bench_upstream bench_load
  bin_dir=$root/build/default
fi
tokentap=$bin_dir/proxy/tokentap
upstream_bin=$bin_dir/bench/bench_upstream
load=$bin_dir/bench/bench_load

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
proxy_cpu=0
load_cpu=1
if [ "$(nproc)" -lt 2 ]; then load_cpu=0; fi
pin_proxy=(taskset -c "$proxy_cpu")
pin_load=(taskset -c "$load_cpu")

# Streaming shapes: name, concurrent streams, events, pacing (ms). In the smoke run a stream of
# 20 x 10 ms must start after the warm-up and end inside the window: 0.6 s leaves room for the
# timers running late on a busy machine (0.3 s did not, with nginx, at load average 14).
if [ "$smoke" = 1 ]; then
  dur=0.5; warm=0.1; rates=(1000); wrk_dur=1; stream_dur=0.6; hold_counts=(50)
  shapes=("stream-20x10ms 10 20 10" "stream-100x1ms 50 100 1")
else
  dur=5; warm=1; rates=(200 1000 5000); wrk_dur=5; stream_dur=5; hold_counts=(100 500 1000)
  shapes=("stream-20x50ms 10 20 50" "stream-200x1ms 10 200 1" "stream-500x20x50ms 500 20 50")
fi
results=$tmp/results.jsonl
# Others' work on the same machine moves tails a lot: the report says how busy it was.
machine_load() {
  # shellcheck disable=SC2009  # pgrep -c counts one name at a time
  echo "load average $(cut -d' ' -f1-3 /proc/loadavg), $(ps -eo comm= | grep -cE '^(cc1plus|ld|ninja|ctest)$') compiler, linker, ninja or ctest processes running"
}
load_at_start=$(machine_load)
: >"$results"
notes=()

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits (bounded; 30 s, for a proxy starting under callgrind on a busy machine) until FILE
# contains PATTERN; fails with the file's content otherwise.
wait_for_line() {
  local file=$1 pattern=$2
  for _ in $(seq 600); do
    if grep -q "$pattern" "$file" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "bench: timed out waiting for '$pattern' in $file:" >&2
  cat "$file" >&2
  return 1
}

wait_for_http() {
  for _ in $(seq 600); do
    if curl -s -o /dev/null "http://127.0.0.1:$1/"; then return 0; fi
    sleep 0.05
  done
  echo "bench: nothing answers on 127.0.0.1:$1" >&2
  return 1
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f", s}'; }

# record WORKLOAD TARGET JSON: one result line for bench/report.py.
record() {
  printf '{"workload":"%s","target":"%s","result":%s}\n' "$1" "$2" "$3" >>"$results"
}

# start_tokentap NAME [ACCESS_LOG [LAUNCHER...]]: one worker (tokentap_workers if set), full
# default metering, the access log to /dev/null unless given; LAUNCHER (valgrind and its
# options, env LD_PRELOAD=...) runs it if given. With
# tokentap_sample_ratio set, tracing is on at that ratio, exporting to the sink on
# $otlp_sink_port (http/protobuf, the default settings otherwise).
tokentap_sample_ratio=""
start_tokentap() {
  local name=$1 access=${2:-/dev/null}
  shift $(( $# < 2 ? $# : 2 ))
  cat >"$tmp/$name.yaml" <<EOF
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
workers: ${tokentap_workers:-1}
log: {access: $access}
routes:
  - {name: chat, prefix: /, upstream: "http://127.0.0.1:$chat_port", provider: openai}
  - {name: sse, prefix: /sse/, strip_prefix: true, upstream: "http://127.0.0.1:$sse_port", provider: openai}
EOF
  if [ -n "$tokentap_sample_ratio" ]; then
    cat >>"$tmp/$name.yaml" <<EOF
tracing: {enabled: true, otlp_endpoint: "http://127.0.0.1:$otlp_sink_port/v1/traces", sample_ratio: $tokentap_sample_ratio}
EOF
  fi
  "${pin_proxy[@]}" "$@" "$tokentap" --config "$tmp/$name.yaml" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  tokentap_pid=$!
  pids+=("$tokentap_pid")
  wait_for_line "$tmp/$name.err" '"msg":"listening"'
  tokentap_port=$(grep -o '"listen":"127.0.0.1:[0-9]*"' "$tmp/$name.err" | grep -o '[0-9]*"$' | tr -d '"')
  tokentap_admin=$(grep -o '"admin_listen":"127.0.0.1:[0-9]*"' "$tmp/$name.err" | grep -o '[0-9]*"$' | tr -d '"')
}

stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# report_args: what bench/report.py is told about the run (machine, commit, build, notes).
set_report_args() {
  local machine commit
  machine="$(nproc) vCPU, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr)"
  if [ -n "${TOKENTAP_BENCH_COMMIT:-}" ]; then
    commit=$TOKENTAP_BENCH_COMMIT
  else
    commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    if ! git diff --quiet HEAD -- proxy parsers config 2>/dev/null; then commit="$commit (+ local changes)"; fi
  fi
  report_args=(--results "$results" --machine "$machine" --commit "$commit" --chat-upstream "$chat_upstream"
    --build "$(grep -o 'CMAKE_BUILD_TYPE:STRING=.*' "$bin_dir/CMakeCache.txt" | cut -d= -f2)")
  notes+=("Machine load (other builds and tests share this machine): at the start ${load_at_start}; at the end $(machine_load).")
  local n
  for n in "${notes[@]}"; do report_args+=(--note "$n"); done
}

# --- upstreams (CPU 1) --------------------------------------------------------------------------
mkfifo "$tmp/lockstep"
"${pin_load[@]}" "$upstream_bin" --lockstep="$tmp/lockstep" >"$tmp/sse.out" 2>&1 &
pids+=($!)
wait_for_line "$tmp/sse.out" '"port"'
sse_port=$(grep -o '"port":[0-9]*' "$tmp/sse.out" | cut -d: -f2)

have_nginx=0
if command -v nginx >/dev/null; then have_nginx=1; fi
if [ "$have_nginx" = 1 ]; then
  "$upstream_bin" --print-completion >"$tmp/completion.json"
  mkdir -p "$tmp/nginx"
  nginx_common="daemon off; master_process off; worker_processes 1;
events { worker_connections 8192; }"
  nginx_http="access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  client_max_body_size 0; client_body_buffer_size 1m;
  client_body_temp_path $tmp/nginx/body; proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fcgi; uwsgi_temp_path $tmp/nginx/uwsgi; scgi_temp_path $tmp/nginx/scgi;"
  chat_port=$(free_port)
  cat >"$tmp/nginx-upstream.conf" <<EOF
$nginx_common
pid $tmp/nginx/upstream.pid; error_log $tmp/nginx/upstream.err warn;
http { $nginx_http
  server { listen 127.0.0.1:$chat_port;
    location / { default_type application/json; return 200 '$(cat "$tmp/completion.json")'; } } }
EOF
  "${pin_load[@]}" nginx -p "$tmp/nginx" -c "$tmp/nginx-upstream.conf" -e "$tmp/nginx/upstream.err" &
  chat_upstream_pid=$!
  pids+=("$chat_upstream_pid")
  wait_for_http "$chat_port"
  chat_upstream="nginx return 200"
else
  chat_port=$sse_port
  chat_upstream="bench_upstream"
  notes+=("nginx is not installed: the nginx baseline was skipped and bench_upstream served the chat workload.")
fi

# start_nginx_proxy NAME [LAUNCHER...]: the nginx baseline proxy (one process, upstream
# keep-alive, no buffering) on two fresh ports, one per upstream. With nginx_workers above 1: a
# master process and that many worker processes (nginx_pid is the master's).
start_nginx_proxy() {
  local name=$1 procs="daemon off; master_process off; worker_processes 1;"
  shift
  if [ "${nginx_workers:-1}" -gt 1 ]; then procs="daemon off; worker_processes $nginx_workers;"; fi
  nginx_chat_port=$(free_port)
  nginx_sse_port=$(free_port)
  local proxy_loc="proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_buffering off;"
  cat >"$tmp/$name.conf" <<EOF
$procs
events { worker_connections 8192; }
pid $tmp/nginx/$name.pid; error_log $tmp/nginx/$name.err warn;
http { $nginx_http
  upstream chat { server 127.0.0.1:$chat_port; keepalive 64; }
  upstream sse { server 127.0.0.1:$sse_port; keepalive 64; }
  server { listen 127.0.0.1:$nginx_chat_port; location / { proxy_pass http://chat; $proxy_loc } }
  server { listen 127.0.0.1:$nginx_sse_port; location / { proxy_pass http://sse; $proxy_loc } } }
EOF
  "${pin_proxy[@]}" "$@" nginx -p "$tmp/nginx" -c "$tmp/$name.conf" -e "$tmp/nginx/$name.err" &
  nginx_pid=$!
  pids+=("$nginx_pid")
  wait_for_http "$nginx_chat_port"
}

# write_wrk_script FILE: wrk's Lua script for the chat workload: a POST of the ~1 KiB request.
write_wrk_script() {
  cat >"$1" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench-0000000000000000"
wrk.headers["x-agent-id"] = "bench"
wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"$(printf 'Summarise the incident timeline and list follow-ups. %.0s' $(seq 16))"}],"max_tokens":256}'
EOF
}

metric_sum() {  # metric_sum NAME [LABEL_FILTER]
  curl -s "http://127.0.0.1:$tokentap_admin/metrics" |
    awk -v name="$1" -v filter="${2:-}" \
      'index($0, name "{") == 1 && index($0, filter) > 0 {s += $NF} END {printf "%.0f", s}'
}

if [ "$throughput" = 1 ]; then
  # shellcheck source=bench/throughput.sh
  source "$root/bench/throughput.sh"
  exit 0
fi
if [ "$instructions" = 1 ]; then
  # shellcheck source=bench/instructions.sh
  source "$root/bench/instructions.sh"
  exit 0
fi

# --- proxies (CPU 0) ----------------------------------------------------------------------------
if [ "$have_nginx" = 1 ]; then
  start_nginx_proxy nginx-proxy
fi
# An LLM gateway users would otherwise pick: Portkey's open-source gateway, pinned in
# bench/gateway/package-lock.json, installed here (full runs only), headless, on loopback,
# pointed at the same upstreams by its x-portkey-* request headers.
have_gateway=0
if [ "$smoke" = 0 ] && command -v node >/dev/null && command -v npm >/dev/null &&
  [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ]; then
  gateway_dir=$root/bench/gateway
  if [ -d "$gateway_dir/node_modules" ] && [ ! "$gateway_dir/package-lock.json" -nt "$gateway_dir/node_modules" ] ||
    (cd "$gateway_dir" && npm ci --ignore-scripts --no-audit --no-fund >"$tmp/gateway-install.log" 2>&1 &&
      touch node_modules); then
    gateway_port=$(free_port)
    NODE_ENV=production "${pin_proxy[@]}" node --import "$gateway_dir/loopback.mjs" \
      "$gateway_dir/node_modules/@portkey-ai/gateway/build/start-server.js" --headless \
      --port="$gateway_port" >"$tmp/gateway.out" 2>&1 &
    gateway_pid=$!
    pids+=("$gateway_pid")
    if wait_for_http "$gateway_port"; then
      have_gateway=1
    else
      notes+=("the gateway did not start, so it was skipped: $(tail -1 "$tmp/gateway.out")")
    fi
  else
    notes+=("the gateway in bench/gateway could not be installed with npm ci, so it was skipped: $(tail -1 "$tmp/gateway-install.log")")
  fi
elif [ "$smoke" = 0 ]; then
  notes+=("Node.js 20+ with npm is not installed: the gateway comparison was skipped.")
fi
start_tokentap tokentap
idle_rss=$(rss_kib "$tokentap_pid")
record memory tokentap "{\"idle_rss_kib\":$idle_rss}"
if [ "$have_nginx" = 1 ]; then
  record memory nginx "{\"idle_rss_kib\":$(rss_kib "$nginx_pid")}"
fi
if [ "$have_gateway" = 1 ]; then
  record memory portkey "{\"idle_rss_kib\":$(rss_kib "$gateway_pid")}"
fi

# Targets: name, chat port, chat path, stream port, stream path, pid (for CPU and RSS).
targets=(direct)
declare -A chat_port_of=([direct]=$chat_port [tokentap]=$tokentap_port)
declare -A sse_port_of=([direct]=$sse_port [tokentap]=$tokentap_port)
declare -A sse_path_of=([direct]=/v1/chat/completions [tokentap]=/sse/v1/chat/completions)
declare -A pid_of=([tokentap]=$tokentap_pid)
if [ "$have_nginx" = 1 ]; then
  targets+=(nginx)
  chat_port_of[nginx]=$nginx_chat_port
  sse_port_of[nginx]=$nginx_sse_port
  sse_path_of[nginx]=/v1/chat/completions
  pid_of[nginx]=$nginx_pid
fi
targets+=(tokentap)
if [ "$have_gateway" = 1 ]; then
  targets+=(portkey)
  chat_port_of[portkey]=$gateway_port
  pid_of[portkey]=$gateway_pid
fi

# Request headers a target needs: the gateway is told which provider and host to call.
target_headers() {
  if [ "$1" = portkey ]; then
    printf '%s\n' "x-portkey-provider: openai" "x-portkey-custom-host: http://127.0.0.1:$chat_port/v1"
  fi
}
header_args() {
  local h
  header_args_out=()
  while IFS= read -r h; do [ -n "$h" ] && header_args_out+=(--header="$h"); done < <(target_headers "$1")
}

proc_args() {
  local pid=${pid_of[$1]:-}
  if [ -n "$pid" ]; then echo "--cpu-pid=$pid --rss-pid=$pid"; fi
}

run_load() {
  local workload=$1 target=$2
  shift 2
  local out
  # shellcheck disable=SC2046
  out=$(timeout 120 "${pin_load[@]}" "$load" "$@" $(proc_args "$target"))
  record "$workload" "$target" "$out"
  echo "  $workload $target: $out" | cut -c1-160 >&2
}

# --- workload 1: small non-streaming chat -------------------------------------------------------
echo "bench: workload 1 (chat, ~1 KiB), ${dur}s per run" >&2
for t in "${targets[@]}"; do
  header_args "$t"
  hdr=("${header_args_out[@]}")
  run_load chat-c1 "$t" chat --target="127.0.0.1:${chat_port_of[$t]}" "${hdr[@]}" --duration="$dur" --warmup="$warm"
  # The same with the proxy moved onto the load's CPU: no cross-CPU wake-ups on the path, which
  # on a VM cost tens of µs each and dominate the pinned figure at concurrency 1.
  pid=${pid_of[$t]:-}
  [ -n "$pid" ] && taskset -a -p -c "$load_cpu" "$pid" >/dev/null
  run_load chat-c1-samecpu "$t" chat --target="127.0.0.1:${chat_port_of[$t]}" "${hdr[@]}" \
    --duration="$dur" --warmup="$warm"
  [ -n "$pid" ] && taskset -a -p -c "$proxy_cpu" "$pid" >/dev/null
  for r in "${rates[@]}"; do
    # The gateway serves a few hundred requests per second: higher rates only build a queue.
    [ "$t" = portkey ] && [ "$r" -gt 200 ] && continue
    run_load "chat-rate-$r" "$t" chat --target="127.0.0.1:${chat_port_of[$t]}" "${hdr[@]}" \
      --rate="$r" --connections=64 --duration="$dur" --warmup="$warm"
  done
done
if command -v wrk >/dev/null; then
  write_wrk_script "$tmp/post.lua"
  for t in "${targets[@]}"; do
    cp "$tmp/post.lua" "$tmp/post-$t.lua"
    target_headers "$t" | while IFS= read -r h; do
      printf 'wrk.headers["%s"] = "%s"\n' "${h%%: *}" "${h#*: }" >>"$tmp/post-$t.lua"
    done
    pid=${pid_of[$t]:-}
    cpu0=0; [ -n "$pid" ] && cpu0=$(cpu_ns "$pid")
    "${pin_load[@]}" wrk -t1 -c64 -d"${wrk_dur}s" -s "$tmp/post-$t.lua" \
      "http://127.0.0.1:${chat_port_of[$t]}/v1/chat/completions" >"$tmp/wrk-$t.txt"
    cpu1=0; [ -n "$pid" ] && cpu1=$(cpu_ns "$pid")
    reqs=$(awk '/requests in/ {print $1}' "$tmp/wrk-$t.txt")
    rps=$(awk '/^Requests\/sec/ {print $2}' "$tmp/wrk-$t.txt")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$tmp/wrk-$t.txt")
    record saturation "$t" "{\"requests\":$reqs,\"rps\":$rps,\"non2xx\":${non2xx:-0},\"cpu_s\":$(awk "BEGIN {print ($cpu1 - $cpu0) / 1e9}")}"
    echo "  saturation $t: $rps req/s" >&2
  done
else
  notes+=("wrk is not installed: saturation runs were skipped.")
fi

# --- workload 3: large requests -----------------------------------------------------------------
echo "bench: workload 3 (256 KiB requests)" >&2
for t in "${targets[@]}"; do
  header_args "$t"
  run_load large-c1 "$t" chat --target="127.0.0.1:${chat_port_of[$t]}" "${header_args_out[@]}" \
    --body-bytes=262144 \
    --duration="$dur" --warmup="$warm"
done

# --- workload 2: streaming ----------------------------------------------------------------------
echo "bench: workload 2 (streaming)" >&2
if [ "$have_gateway" = 1 ]; then
  notes+=("The gateway (@portkey-ai/gateway 1.15.2 on Node $(node --version)) fails every streaming request with 500 {\"status\":\"failure\",\"message\":\"Something went wrong\"} (its log: TypeError: immutable, from Headers.append on the upstream's response), so it has no streaming or open-stream rows (bench/README.md).")
fi
for t in "${targets[@]}"; do
  [ "$t" = portkey ] && continue
  target=(--target="127.0.0.1:${sse_port_of[$t]}" --path="${sse_path_of[$t]}")
  for shape in "${shapes[@]}"; do
    read -r name streams events interval <<<"$shape"
    run_load "$name" "$t" stream "${target[@]}" --streams="$streams" --events="$events" \
      --interval-ms="$interval" --duration="$stream_dur" --warmup="$warm"
  done
done

# --- workload 5: metering correctness under load ------------------------------------------------
echo "bench: workload 5 (metering correctness)" >&2
json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
upstream_stat() { curl -s "http://127.0.0.1:$sse_port/stats" | json_field "$1"; }
before=("$(metric_sum llm_requests_total)" "$(metric_sum llm_tokens_total 'type="input"')"
  "$(metric_sum llm_tokens_total 'type="output"')" "$(upstream_stat requests)"
  "$(upstream_stat prompt_tokens)" "$(upstream_stat completion_tokens)")
timeout 120 "${pin_load[@]}" "$load" chat --target="127.0.0.1:$tokentap_port" \
  --path=/sse/v1/chat/completions --rate=1000 --connections=32 --duration="$dur" --warmup=0 \
  >"$tmp/w5-chat.json" &
w5_chat=$!
timeout 120 "${pin_load[@]}" "$load" stream --target="127.0.0.1:$tokentap_port" \
  --path=/sse/v1/chat/completions --streams=50 --events=20 --interval-ms=10 --duration="$dur" \
  --warmup=0 >"$tmp/w5-stream.json"
wait "$w5_chat"
after=("$(metric_sum llm_requests_total)" "$(metric_sum llm_tokens_total 'type="input"')"
  "$(metric_sum llm_tokens_total 'type="output"')" "$(upstream_stat requests)"
  "$(upstream_stat prompt_tokens)" "$(upstream_stat completion_tokens)")
w5_clients=0
for f in "$tmp/w5-chat.json" "$tmp/w5-stream.json"; do
  w5_clients=$(( w5_clients + $(json_field completed <"$f") + $(json_field errors <"$f") ))
done
w5=("client_requests" "$w5_clients"
  "metered_requests" $(( after[0] - before[0] )) "served_requests" $(( after[3] - before[3] ))
  "metered_input_tokens" $(( after[1] - before[1] )) "served_input_tokens" $(( after[4] - before[4] ))
  "metered_output_tokens" $(( after[2] - before[2] )) "served_output_tokens" $(( after[5] - before[5] )))
record correctness tokentap "$(printf '"%s":%s,' "${w5[@]}" | sed 's/^/{/; s/,$/}/')"

# --- workload 4: memory -------------------------------------------------------------------------
echo "bench: workload 4 (memory with open streams)" >&2
stop_pid "$tokentap_pid"
start_tokentap tokentap-mem
pid_of[tokentap]=$tokentap_pid
sse_port_of[tokentap]=$tokentap_port
record memory tokentap-fresh "{\"idle_rss_kib\":$(rss_kib "$tokentap_pid")}"
for t in "${targets[@]}"; do
  [ "$t" = direct ] || [ "$t" = portkey ] && continue
  for n in "${hold_counts[@]}"; do
    run_load "hold-$n" "$t" stream --target="127.0.0.1:${sse_port_of[$t]}" \
      --path="${sse_path_of[$t]}" --streams="$n" --events=1000 --interval-ms=1000 --hold
  done
done

set_report_args
if [ "$smoke" = 1 ]; then
  python3 bench/report.py "${report_args[@]}" --check
else
  python3 bench/report.py "${report_args[@]}" --check --write bench/RESULTS.md
fi
