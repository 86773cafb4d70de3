#!/usr/bin/env bash
# The installed flowgated.service is hardened: systemd-analyze security rates its
# exposure at 1.5 or lower (0 is a fully sandboxed service, 10 an unprotected one).
# Usage: unit-exposure.sh BUILD_DIR
source "$(dirname "$0")/lib.sh"
install_into_temp_prefix "$1"

unit="$prefix/lib/systemd/system/flowgated.service"
report=$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1) ||
  { echo "$report" >&2; fail "systemd-analyze security failed"; }
score=$(echo "$report" | sed -n 's/.*Overall exposure level for flowgated.service: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || { echo "$report" >&2; fail "no overall exposure level in the report"; }
echo "exposure: $score"
awk -v score="$score" 'BEGIN { exit !(score <= 1.5) }' ||
  { echo "$report" >&2; fail "exposure $score is above 1.5"; }
