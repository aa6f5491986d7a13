#!/usr/bin/env bash
# Installs dependencies, builds and runs the whole test suite: first the release build,
# then the same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
# Set TOKENTAP_SKIP_ASAN=1 to run only the release build (e.g. while iterating locally).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

jobs=$(nproc 2>/dev/null || echo 2)
status=0

cmake --preset default >/dev/null
cmake --build --preset default -j "$jobs"
ctest --preset default || status=1

if [ "${TOKENTAP_SKIP_ASAN:-0}" != "1" ]; then
  cmake --preset asan >/dev/null
  cmake --build --preset asan -j "$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --preset asan || status=1
fi
exit $status
