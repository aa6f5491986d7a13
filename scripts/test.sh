#!/usr/bin/env bash
# Installs dependencies, builds and runs the whole test suite: first the release build,
# then the same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
# Set TOKENTAP_SKIP_ASAN=1 to run only the release build (e.g. while iterating locally).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

jobs=$(nproc 2>/dev/null || echo 2)
status=0

# The SDK end-to-end tests need Node.js 20+. Debian bookworm's own nodejs is 18: there they are
# skipped, loudly, rather than failing the whole suite (CI machines have Node.js 20).
e2e=(-DTOKENTAP_E2E=ON)
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "WARNING: Node.js 20+ not found (have: $(node --version 2>/dev/null || echo none));" \
       "skipping the SDK end-to-end tests (tests/e2e)." >&2
  e2e=(-DTOKENTAP_E2E=OFF)
fi

cmake --preset default "${e2e[@]}" >/dev/null
cmake --build --preset default -j "$jobs"
ctest --preset default || status=1

if [ "${TOKENTAP_SKIP_ASAN:-0}" != "1" ]; then
  cmake --preset asan "${e2e[@]}" >/dev/null
  cmake --build --preset asan -j "$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --preset asan || status=1
fi
exit $status
