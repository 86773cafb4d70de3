#!/usr/bin/env bash
# No test's name holds a ';': ctest's discovery of Catch2 tests splits a name there into
# pieces that match no test, and a filter that matches nothing runs nothing and passes.
# Usage: check-test-names.sh TEST_BINARY...
set -euo pipefail
status=0
for binary in "$@"; do
  # Catch2 exits with the number of tests listed: only the names say whether it worked.
  names=$("$binary" --list-test-names-only || true)
  [ -n "$names" ] || { echo "$binary lists no tests" >&2; status=1; }
  if bad=$(grep -F ';' <<<"$names"); then
    echo "$binary: test names with ';' (ctest would run nothing for them):" >&2
    echo "$bad" >&2
    status=1
  fi
done
exit "$status"
