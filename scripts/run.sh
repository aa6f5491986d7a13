#!/usr/bin/env bash
# Installs dependencies, builds tokentap in release mode and starts it.
# Without arguments it runs on the built-in defaults (proxy 127.0.0.1:8080, admin 0.0.0.0:9901).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# A user's build: a warning from another compiler version must not stop it (CI keeps -Werror).
cmake --preset default -DTOKENTAP_WERROR=OFF >/dev/null
cmake --build --preset default --target tokentap
exec ./build/default/proxy/tokentap "$@"
