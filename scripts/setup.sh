#!/usr/bin/env bash
# Installs everything tokentap needs to build and test on Debian bookworm. Idempotent.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libuv1-dev node-llhttp libssl-dev nlohmann-json3-dev prometheus-cpp-dev catch2
  libyaml-cpp-dev zlib1g-dev libbrotli-dev
  curl openssl ca-certificates python3
)
# Node.js is only needed by the end-to-end SDK tests; keep whatever node the machine already has.
command -v node >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# npm packages of the end-to-end SDK tests, as pinned in tests/e2e/package-lock.json; reinstalled
# only when node_modules is missing or older than the lock file.
e2e_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/e2e"
if [ ! -d "$e2e_dir/node_modules" ] || [ "$e2e_dir/package-lock.json" -nt "$e2e_dir/node_modules" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "setup.sh: npm not found; it is needed to install the tests/e2e packages" >&2
    exit 1
  fi
  (cd "$e2e_dir" && npm ci --no-audit --no-fund)
  touch "$e2e_dir/node_modules"
fi
