#!/usr/bin/env bash
# The installed daemon runs with the installed configuration and policy, without root:
# its store made with --init-store, it starts on a temporary socket and store, tells a notify socket READY=1, answers
# the installed client, records the check, and exits 0 on SIGTERM after STOPPING=1.
# Usage: installed-daemon.sh BUILD_DIR
source "$(dirname "$0")/lib.sh"
install_into_temp_prefix "$1"

socket="$work/s.sock"
db="$work/a.db"
notify="$work/notify.sock"
socat -u UNIX-RECV:"$notify" OPEN:"$work/notify.log",creat,append &
started_pids+=($!)
wait_for_socket "$notify"

# The store is made once, as the install guide says, before the first start.
"$prefix/sbin/flowgated" --config "$prefix/etc/flowgate/flowgated.toml" --audit-db "$db" \
  --init-store 2>"$work/init.log" || { cat "$work/init.log" >&2; fail "--init-store failed"; }
[ ! -e "$socket" ] || fail "--init-store bound a socket"

NOTIFY_SOCKET="$notify" "$prefix/sbin/flowgated" --config "$prefix/etc/flowgate/flowgated.toml" \
  --socket "$socket" --audit-db "$db" 2>"$work/flowgated.log" &
daemon=$!
started_pids+=("$daemon")
wait_for_socket "$socket"

# The daemon's rule for this question lives in the installed policy, so the answer
# also shows which policy the installed configuration pointed it at.
status=0
answer=$("$prefix/bin/flowgate" --socket "$socket" check --purpose health_services \
  --activity lifestyle_programme --to prevent --data checkup_result) || status=$?
echo "$answer"
[ "$status" -eq 0 ] || { cat "$work/flowgated.log" >&2; fail "the check exited $status, not 0 (allow)"; }
grep -q "$prefix/etc/flowgate/policy/kenpo.policy" <<<"$answer" ||
  fail "the answer's rule is not from the installed policy"

status=0
"$prefix/bin/flowgate" --socket "$socket" check --purpose health_services --to employer \
  --data checkup_result >/dev/null || status=$?
[ "$status" -eq 1 ] || fail "the employer check exited $status, not 1 (deny)"

stop_and_expect_clean_exit "$daemon"
grep -q "event=stopped" "$work/flowgated.log" || fail "no event=stopped in the log"
grep -q "READY=1" "$work/notify.log" || fail "flowgated never said READY=1"
grep -q "STOPPING=1" "$work/notify.log" || fail "flowgated never said STOPPING=1"

checks=$(sqlite3 "$db" "SELECT count(*) FROM audit_rows WHERE kind = 'check'")
[ "$checks" -eq 2 ] || fail "the audit store holds $checks checks, not 2"
