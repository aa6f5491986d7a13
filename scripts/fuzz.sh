#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan, see tests/fuzz/README.md) and runs each one
# for N seconds (default 60) from its committed corpus. New inputs go to a work corpus in the
# build directory, never into tests/fuzz/corpus. On a crash or a broken invariant it keeps
# fuzzing for the rest of the time, then prints each reproducer's path and failure and how to
# replay it, and the script exits non-zero.
#
#   scripts/fuzz.sh [seconds] [target...]      e.g. scripts/fuzz.sh 600 downstream_request
#
# Environment: TOKENTAP_FUZZ_BUILD (default build/fuzz), TOKENTAP_FUZZ_JOBS (build jobs, 2).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
build=${TOKENTAP_FUZZ_BUILD:-build/fuzz}
all_targets=(sse llm_parser content_decoder usage_chunk_filter stream_usage_option config
             price_file downstream_request upstream_response)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")

dict_for() {
  case $1 in
    downstream_request | upstream_response) echo tests/fuzz/dict/http.dict ;;
    sse | usage_chunk_filter) echo tests/fuzz/dict/sse.dict ;;
    llm_parser | stream_usage_option | price_file) echo tests/fuzz/dict/json.dict ;;
    config) echo tests/fuzz/dict/yaml.dict ;;
    *) echo "" ;;
  esac
}

# clang and libFuzzer's runtime are needed only here: the main build (scripts/setup.sh) is GCC.
missing=()
for p in clang libclang-rt-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update
  $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi

cmake -S . -B "$build" -G Ninja \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTOKENTAP_FUZZ=ON -DTOKENTAP_SANITIZE=ON -DTOKENTAP_E2E=OFF >/dev/null
cmake --build "$build" -j "${TOKENTAP_FUZZ_JOBS:-2}" \
  --target $(printf 'fuzz_%s ' "${targets[@]}")

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0
for target in "${targets[@]}"; do
  fuzzer="$build/tests/fuzz/fuzz_$target"
  work="$build/fuzz-work/$target"
  artifacts="$build/fuzz-artifacts/$target"
  log="$build/fuzz-logs/$target.log"
  rm -rf "$artifacts"
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  : >"$log"
  # A single allocation over 256 MiB is a bug in every target, and reporting it is quick
  # (an RSS-limit report first walks the whole heap, which can take minutes).
  args=(-timeout=20 -rss_limit_mb=4096 -malloc_limit_mb=256 -print_final_stats=1
        -artifact_prefix="$artifacts/")
  dict=$(dict_for "$target")
  [ -n "$dict" ] && [ -f "$dict" ] && args+=(-dict="$dict")
  echo "== $target: ${seconds}s (log: $log)"
  # After a failure, fuzz on for the rest of the time from the grown work corpus, so that one
  # easy bug cannot hide the others.
  deadline=$((SECONDS + seconds))
  executed=0
  for _ in $(seq 25); do
    left=$((deadline - SECONDS))
    [ "$left" -le 0 ] && break
    "$fuzzer" "${args[@]}" -max_total_time="$left" "$work" "tests/fuzz/corpus/$target" \
      >>"$log" 2>&1 && status=0 || status=$?
    runs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | tail -1 |
           grep -oE '[0-9]+$' || true)
    executed=$((executed + ${runs:-0}))
    [ "$status" -eq 0 ] && break
  done
  corpus=$(find "$work" "tests/fuzz/corpus/$target" -type f | wc -l)
  echo "   $executed inputs run, corpus now $corpus"
  mapfile -t found < <(find "$artifacts" -type f | sort)
  if [ ${#found[@]} -gt 0 ]; then
    failed=1
    echo "!! $target: ${#found[@]} failing input(s) in $artifacts"
    for reproducer in "${found[@]:0:3}"; do
      echo "!! reproducer: $reproducer"
      out=$("$fuzzer" -malloc_limit_mb=256 -rss_limit_mb=4096 "$reproducer" 2>&1 || true)
      # (|| true: with pipefail, a report with nothing to show must not end the script.)
      if grep -q "FUZZ INVARIANT" <<<"$out"; then
        grep -A6 "FUZZ INVARIANT" <<<"$out" | grep -v '^==' | cut -c1-400 || true
      elif grep -qE 'ERROR|SUMMARY' <<<"$out"; then
        grep -E 'ERROR|SUMMARY|^ +#[0-9]+ ' <<<"$out" | grep -v 'libFuzzer\|fuzzer::' | head -20 || true
      else
        echo "   passes when run again: a timing failure? See $log"
      fi
    done
    echo "!! replay one:  $fuzzer <reproducer>"
    echo "!!          or: build/<dir>/tests/fuzz/replay_$target <reproducer>"
    echo "!! keep it:     cp <reproducer> tests/fuzz/regressions/$target/"
  fi
done
exit $failed
