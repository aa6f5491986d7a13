#!/usr/bin/env bash
# Installs everything tokentap needs to build and test on Debian bookworm. Idempotent.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libuv1-dev node-llhttp libssl-dev nlohmann-json3-dev prometheus-cpp-dev catch2
  libyaml-cpp-dev zlib1g-dev libbrotli-dev
  curl openssl ca-certificates python3
)
root="$(cd "$(dirname "$0")/.." && pwd)"
# Test-only tools, needed only where the tests are (the image build leaves tests/ out).
# prometheus: promtool and the server the k8s/ rule and dashboard tests run. Node.js: the
# end-to-end SDK tests and the k8s/ manifest validation; keep whatever node the machine has.
if [ -d "$root/tests" ]; then
  packages+=(prometheus)
  # valgrind (callgrind) and nginx: the bench smoke tests count instructions per request and
  # run nginx as the baseline next to tokentap (bench/README.md).
  packages+=(valgrind nginx)
  # clang-format and clang-tidy: the lint tests (scripts/lint.sh, .clang-format, .clang-tidy).
  packages+=(clang-format clang-tidy)
  command -v node >/dev/null 2>&1 || packages+=(nodejs npm)
  # kubectl renders the k8s/ kustomizations; Debian's own (kubernetes-client) only where the
  # machine has none.
  command -v kubectl >/dev/null 2>&1 || packages+=(kubernetes-client)
fi

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

# npm packages of the end-to-end SDK tests and of the k8s/ manifest validation, as pinned in
# each directory's package-lock.json; reinstalled only when node_modules is missing or older than
# the lock file.
for npm_dir in "$root/tests/e2e" "$root/tests/k8s"; do
  [ -f "$npm_dir/package-lock.json" ] || continue
  if [ ! -d "$npm_dir/node_modules" ] || [ "$npm_dir/package-lock.json" -nt "$npm_dir/node_modules" ]; then
    if ! command -v npm >/dev/null 2>&1; then
      echo "setup.sh: npm not found; it is needed to install the ${npm_dir#"$root"/} packages" >&2
      exit 1
    fi
    (cd "$npm_dir" && npm ci --no-audit --no-fund)
    touch "$npm_dir/node_modules"
  fi
done
