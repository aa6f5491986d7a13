#!/usr/bin/env bash
# Soak test: tokentap under a steady mixed load (OpenAI, Anthropic and Gemini, JSON and SSE,
# 1% client aborts, 1% upstream errors) for [seconds] (default 1800), then checks memory growth,
# file descriptors and that every request was accounted exactly once (tests/soak/README.md).
#
#   bash scripts/soak.sh            # 30 minutes at 200 req/s
#   bash scripts/soak.sh 600        # 10 minutes
#   SOAK_RATE=100 bash scripts/soak.sh 60
#
# Builds the release binary unless TOKENTAP_BIN names one. Everything runs on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-1800}
if [ -z "${TOKENTAP_BIN:-}" ]; then
  cmake --preset default >/dev/null
  cmake --build --preset default -j "$(nproc)" --target tokentap
  export TOKENTAP_BIN=$PWD/build/default/proxy/tokentap
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec python3 tests/soak/soak.py --seconds "$seconds" "${@:2}"
