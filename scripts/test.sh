#!/usr/bin/env bash
# Installs what is needed, then builds and runs every test: once optimised with
# warnings as errors, once under AddressSanitizer + UndefinedBehaviorSanitizer, and
# checks the formatting. This is what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

echo "== format check"
git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run --Werror

jobs=$(nproc)
for preset in ci asan; do
  echo "== $preset: configure, build, test"
  cmake --preset "$preset"
  cmake --build --preset "$preset" -j "$jobs"
  ctest --preset "$preset" -j "$jobs"
done
