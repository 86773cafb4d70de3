#!/usr/bin/env bash
# The folders are the architecture (README.md, "Layout"): arrows point down only. cli
# may use client, audit, central and dsl; central may use audit; daemon may use audit
# and dsl; audit, dsl and client use nothing else of ours. Our headers are included by folder ("audit/record.hpp") or,
# within a folder, by name; a path through ".." would hide a crossing, so none is taken.
# Exits 1 naming every include that breaks a rule.
set -euo pipefail
cd "${1:-$(dirname "$0")/../..}"

status=0
report() {
    echo "$1"
    echo "$2" | sed 's/^/  /'
    status=1
}

# forbid FOLDER OTHER...: no file under FOLDER includes a header of OTHER.
forbid() {
    local folder=$1
    shift
    for other in "$@"; do
        local hits
        hits=$(grep -rnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[\"<]$other/" "$folder" \
            --include='*.cpp' --include='*.hpp' || true)
        if [ -n "$hits" ]; then
            report "$folder/ must not include $other/:" "$hits"
        fi
    done
}

forbid dsl audit daemon client cli central
forbid audit dsl daemon client cli central
forbid client dsl audit daemon cli central
forbid daemon client cli central
forbid central dsl daemon client cli
forbid cli daemon

upward=$(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]*\.\./' \
    dsl audit daemon client cli central tests --include='*.cpp' --include='*.hpp' || true)
if [ -n "$upward" ]; then
    report "includes must name the folder, not climb out of one with '..':" "$upward"
fi

for folder in dsl audit daemon client cli central; do
    if [ ! -d "$folder" ]; then
        report "missing folder:" "$folder"
    fi
done

if [ "$status" -eq 0 ]; then
    echo "layering: dsl, audit, client use nothing else of ours; central uses audit; daemon uses audit and dsl; cli uses client, audit, central and dsl"
fi
exit "$status"
