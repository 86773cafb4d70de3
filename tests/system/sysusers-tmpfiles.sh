#!/usr/bin/env bash
# The sysusers.d and tmpfiles.d entries, applied to a scratch root: they make the
# flowgate user and group, the socket, state and backup directories with their owners
# and modes, and none has an age for systemd-tmpfiles --clean to prune by: audit
# records are kept for at least 3 years. Needs root for the chowns
# (exit 77: skipped, as ctest reports it).
# Usage: sysusers-tmpfiles.sh BUILD_DIR
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "needs root to chown in the scratch root"; exit 77; }

stage="$work/stage"
DESTDIR="$stage" cmake --install "$1" --prefix /usr >"$work/install.log" 2>&1 ||
  { cat "$work/install.log" >&2; fail "cmake --install failed"; }
root="$work/root"
mkdir -p "$root/etc"
systemd-sysusers --root="$root" "$stage/usr/lib/sysusers.d/flowgate.conf" ||
  fail "systemd-sysusers refused the entry"
uid=$(awk -F: '$1 == "flowgate" { print $3 }' "$root/etc/passwd")
gid=$(awk -F: '$1 == "flowgate" { print $3 }' "$root/etc/group")
[ -n "$uid" ] && [ -n "$gid" ] || fail "no flowgate user and group"
grep -q '^flowgate:.*:/var/lib/flowgate:/usr/sbin/nologin$' "$root/etc/passwd" ||
  fail "the flowgate user's home or shell is not /var/lib/flowgate, nologin"

tmpfiles="$stage/usr/lib/tmpfiles.d/flowgate.conf"
systemd-tmpfiles --root="$root" --create "$tmpfiles" || fail "systemd-tmpfiles --create failed"
expect() {
  local got
  got=$(stat -c '%u:%g %a' "$root$1") || fail "no $1"
  [ "$got" = "$2" ] || fail "$1 is $got, not $2"
}
expect /run/flowgate "$uid:$gid 755"
expect /var/lib/flowgate "$uid:$gid 750"
expect /var/backups/flowgate "$uid:$gid 700"

# An age in the last field would let systemd-tmpfiles --clean (run daily by
# systemd-tmpfiles-clean.timer) delete files from the directory.
while read -r type path mode user group age rest; do
  case "$type" in '' | '#'*) continue ;; esac
  [ "${age:--}" = "-" ] || fail "$path has an age ($age): --clean would prune it"
done <"$tmpfiles"
