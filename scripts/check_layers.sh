#!/usr/bin/env bash
# Fails when a source file includes a header from a layer above its own (or from a sibling layer
# of the same rank), so the folders keep talking downwards only. The ranks, lowest first:
#   common < parsers < config, pricing < proxy/net < proxy/http < proxy/core
#   < proxy/metering, proxy/policy, proxy/telemetry < proxy/admin < proxy/app
# A file may include its own folder and any folder of a lower rank.
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"

rank_of() {
  case "$1" in
    common) echo 0 ;;
    parsers) echo 1 ;;
    config | pricing) echo 2 ;;
    proxy/net) echo 3 ;;
    proxy/http) echo 4 ;;
    proxy/core) echo 5 ;;
    proxy/metering | proxy/policy | proxy/telemetry | proxy/tracing) echo 6 ;;
    proxy/admin) echo 7 ;;
    proxy/app) echo 8 ;;
    *) echo "" ;;
  esac
}

# Known upward edges being removed (one "file -> header" per line); the file should stay empty.
exceptions=scripts/layer_exceptions.txt
status=0
while IFS= read -r file; do
  dir=$(dirname "$file")
  own=$(rank_of "$dir")
  if [[ -z "$own" ]]; then
    echo "$file: folder $dir has no layer rank (add it to scripts/check_layers.sh)"
    status=1
    continue
  fi
  while IFS=: read -r line header; do
    target=$(dirname "$header")
    [[ "$target" == "$dir" ]] && continue
    other=$(rank_of "$target")
    [[ -z "$other" ]] && continue  # not one of our layers (e.g. generated headers)
    if ((other >= own)); then
      if grep -qxF "$file -> $header" "$exceptions" 2>/dev/null; then continue; fi
      echo "$file:$line: includes $header, a layer at or above $dir"
      status=1
    fi
  done < <(grep -n '^#include "' "$file" | sed -E 's/^([0-9]+):#include "([^"]+)".*/\1:\2/')
done < <(git ls-files 'common/*.h' 'common/*.cc' 'config/*.h' 'config/*.cc' 'parsers/*.h' \
           'parsers/*.cc' 'pricing/*.h' 'pricing/*.cc' 'proxy/*.h' 'proxy/*.cc')
if ((status == 0)); then echo "layers: every include points downwards"; fi
exit $status
