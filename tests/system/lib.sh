# Shared by the system tests: install the build into a fresh temporary prefix, fail
# with a message, clean up whatever a test started. Sourced, never run.
# Usage in a test: source lib.sh; install_into_temp_prefix BUILD_DIR.

set -euo pipefail

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

started_pids=()
work=$(mktemp -d "${TMPDIR:-/tmp}/flowgate-system.XXXXXX")
cleanup() {
  for pid in "${started_pids[@]}"; do
    { kill -KILL "$pid" && wait "$pid"; } 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# Sets $prefix, the installed tree.
install_into_temp_prefix() {
  prefix="$work/prefix"
  cmake --install "$1" --prefix "$prefix" >"$work/install.log" 2>&1 ||
    { cat "$work/install.log" >&2; fail "cmake --install failed"; }
}

# Waits until PATH exists as a socket, or fails after about 10 s.
wait_for_socket() {
  for _ in $(seq 100); do
    [ -S "$1" ] && return 0
    sleep 0.1
  done
  fail "no socket at $1"
}

# Sends SIGTERM to PID (a child of this shell) and fails unless it exits 0; ctest's
# timeout catches one that never stops.
stop_and_expect_clean_exit() {
  kill -TERM "$1"
  local status=0
  wait "$1" || status=$?
  [ "$status" -eq 0 ] || fail "flowgated exited $status after SIGTERM"
}
