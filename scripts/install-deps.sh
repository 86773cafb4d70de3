#!/usr/bin/env bash
# Installs the Debian 12 packages flowgate builds and tests with. Idempotent.
set -euo pipefail
packages=(
  cmake ninja-build g++ pkg-config clang-format clang-tidy
  libboost1.81-dev libboost-json1.81-dev libsqlite3-dev libspdlog-dev catch2
  libcli11-dev libtomlplusplus-dev libssl-dev libsystemd-dev libicu-dev
  sqlite3 socat python3 python3-cryptography clang libclang-rt-14-dev
  # The central store: libpq to build with, and a real server for its tests.
  libpq-dev postgresql-15
  # The Python client's tests: pytest, mypy, and the wheels pip builds it with offline.
  python3-pytest python3-venv python3-setuptools-whl python3-wheel-whl mypy
  # The reports' browser tests: Chromium, and the Japanese fonts the reports name.
  chromium fonts-noto-cjk
  # The audit report's test runs flowgated on several days of a fake clock (libfaketime).
  faketime
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
