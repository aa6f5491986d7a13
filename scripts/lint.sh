#!/usr/bin/env bash
# Static checks run by ctest (label lint) in the non-sanitizer build.
#
#   scripts/lint.sh format               clang-format --dry-run --Werror on every tracked .h/.cc
#   scripts/lint.sh tidy BUILD_DIR       clang-tidy (.clang-tidy at the root) on every production
#                                        and bench/ .cc, with BUILD_DIR/compile_commands.json
#   scripts/lint.sh tidy-report BUILD_DIR  the same, but report every finding and exit 0 (survey)
#
# File lists come from `git ls-files` at run time, so moved or added files are picked up.
# clang-tidy skips tests/: Catch2's TEST_CASE/SECTION macros turn every test case into one huge
# function (readability-function-size) and expand to code that trips bugprone-* on lines we do
# not own. Headers of our source folders are checked through HeaderFilterRegex in .clang-tidy,
# once per translation unit that includes them; clang-tidy deduplicates within one process only.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
jobs="${LINT_JOBS:-2}"

# Production sources, plus the benchmark tools (bench/: small, and their numbers are only as good
# as their code). tests/ is excluded (see above); so are the fuzz harnesses under tests/fuzz.
tidy_dirs=(config parsers pricing proxy common bench)

format_files() {
  # tests/golden holds recorded provider traffic (not C++); nothing generated is tracked.
  git ls-files -z -- '*.h' '*.cc' ':!:tests/golden/**'
}

tidy_files() {
  git ls-files -z -- "${tidy_dirs[@]/%//*.cc}"
}

run_format() {
  command -v clang-format >/dev/null || { echo "lint: clang-format not installed" >&2; exit 77; }
  format_files | xargs -0 -r clang-format --dry-run --Werror
  echo "lint: clang-format clean ($(format_files | tr -cd '\0' | wc -c) files)"
}

run_tidy() {
  local build_dir="$1" werror="$2"
  command -v clang-tidy >/dev/null || { echo "lint: clang-tidy not installed" >&2; exit 77; }
  if [[ ! -f "$build_dir/compile_commands.json" ]]; then
    echo "lint: $build_dir/compile_commands.json missing (configure the build first)" >&2
    exit 2
  fi
  # -Wno-unknown-warning-option: the build passes GCC-only flags (-Wno-error=restrict) that
  # clang would otherwise report as errors.
  local args=(-p "$build_dir" --quiet --extra-arg=-Wno-unknown-warning-option)
  if [[ "$werror" == 1 ]]; then args+=("--warnings-as-errors=*"); fi
  local count
  count="$(tidy_files | tr -cd '\0' | wc -c)"
  # The sh wrapper turns a crash (signal) into status 1: xargs would stop the whole run on one.
  tidy_files | xargs -0 -r -n 1 -P "$jobs" sh -c 'clang-tidy "$@" || exit 1' clang-tidy "${args[@]}"
  echo "lint: clang-tidy clean ($count files)"
}

case "${1:-}" in
  format) run_format ;;
  tidy) run_tidy "${2:?build dir}" 1 ;;
  tidy-report) run_tidy "${2:?build dir}" 0 || true ;;
  *)
    echo "usage: $0 format | tidy BUILD_DIR | tidy-report BUILD_DIR" >&2
    exit 2
    ;;
esac
