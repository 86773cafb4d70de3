#!/usr/bin/env bash
# Installs what is needed, then checks the formatting, fuzzes the parser and the
# request path for a short while, and builds and runs every test: once optimised with
# warnings as errors (then checks the house style clang-format cannot: braces on every
# if, with clang-tidy), once under AddressSanitizer + UndefinedBehaviorSanitizer. This is
# what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

echo "== format check"
git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run --Werror

jobs=$(nproc)

echo "== fuzz: the policy pipeline and the request path, ${FLOWGATE_FUZZ_SECONDS:-30} s each"
cmake --preset fuzz
cmake --build --preset fuzz -j "$jobs"
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
mkdir -p "$seeds/policy" "$seeds/request"
cp tests/corpus/good/*.policy tests/corpus/bad/*.policy policies/*.policy "$seeds/policy/"
python3 - "$seeds/request" policies/tests/*.jsonl <<'PY'
import json, sys
out = sys.argv[1]
for path in sys.argv[2:]:
    for number, line in enumerate(open(path, encoding="utf-8")):
        if line.strip():
            with open(f"{out}/{path.rsplit('/', 1)[-1]}-{number}.json", "w", encoding="utf-8") as f:
                json.dump(json.loads(line)["request"], f, ensure_ascii=False)
PY
for target in policy request; do
  if ! build/fuzz/tests/fuzz/fuzz_$target -max_total_time="${FLOWGATE_FUZZ_SECONDS:-30}" \
      -timeout=10 "$seeds/$target" >"$seeds/fuzz_$target.log" 2>&1; then
    tail -n 60 "$seeds/fuzz_$target.log"
    echo "fuzz_$target found a failure" >&2
    exit 1
  fi
  grep -E '^Done [0-9]+ runs' "$seeds/fuzz_$target.log"
done

for preset in ci asan; do
  echo "== $preset: configure, build, test"
  cmake --preset "$preset"
  cmake --build --preset "$preset" -j "$jobs"
  ctest --preset "$preset" -j "$jobs"
  if [ "$preset" = ci ]; then
    echo "== house style: clang-tidy (.clang-tidy) over our own sources"
    run-clang-tidy -p build/ci -quiet -j "$jobs" "$(pwd)/(dsl|audit|central|daemon|client|cli|tests)/" \
      >build/ci/clang-tidy.log 2>&1 || { grep -A3 'error:' build/ci/clang-tidy.log; exit 1; }
  fi
done
