#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan, see tests/fuzz/README.md) and runs each one
# for N seconds (default 60) from its committed corpus. New inputs go to a work corpus in the
# build directory, never into tests/fuzz/corpus. On a crash or a broken invariant it prints the
# reproducer's path and how to replay it, and the script exits non-zero.
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
  # Fork mode keeps fuzzing after a failure, so one easy bug cannot hide the others.
  args=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1
        -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -malloc_limit_mb=512
        -artifact_prefix="$artifacts/")
  dict=$(dict_for "$target")
  [ -n "$dict" ] && [ -f "$dict" ] && args+=(-dict="$dict")
  echo "== $target: ${seconds}s (log: $log)"
  "$fuzzer" "${args[@]}" "$work" "tests/fuzz/corpus/$target" >"$log" 2>&1 || true
  grep -E '^#[0-9]+: cov' "$log" | tail -1 || true
  echo "   corpus: $(find "$work" "tests/fuzz/corpus/$target" -type f | wc -l) inputs"
  mapfile -t found < <(find "$artifacts" -type f | sort)
  if [ ${#found[@]} -gt 0 ]; then
    failed=1
    echo "!! $target: ${#found[@]} failing input(s) in $artifacts"
    for reproducer in "${found[@]:0:3}"; do
      echo "!! reproducer: $reproducer"
      out=$("$fuzzer" "$reproducer" 2>&1 || true)
      if grep -q "FUZZ INVARIANT" <<<"$out"; then
        grep -A6 "FUZZ INVARIANT" <<<"$out" | grep -v '^==' | cut -c1-400
      else
        grep -E 'ERROR|SUMMARY|^ +#[0-9]+ ' <<<"$out" | grep -v 'libFuzzer\|fuzzer::' | head -20
      fi
    done
    echo "!! replay one:  $fuzzer <reproducer>   (or build/<dir>/tests/fuzz/replay_$target <reproducer>)"
    echo "!! keep it:     cp <reproducer> tests/fuzz/regressions/$target/"
  fi
done
exit $failed
