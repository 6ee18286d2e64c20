#!/usr/bin/env bash
# Runs every benchmark of the workspace and prints one table: each case,
# its median, its ratio to its baseline (measured in the same run), how it
# compares with the best peer, and the spread over trials.
#
#   scripts/bench.sh            full runs (several minutes)
#   scripts/bench.sh --quick    short runs, for a smoke test
#
# Each benchmark binary prints, besides its own report, one line per case:
#   BENCH <tab> group <tab> case <tab> median <tab> unit <tab> ratio to
#   baseline <tab> vs best peer <tab> spread
# "vs best peer" is the best peer's time / ours (> 1: we are faster); "-"
# where it does not apply. The raw reports are kept in target/bench-logs/.
set -euo pipefail
cd "$(dirname "$0")/.."

args=()
if [ "${1:-}" = "--quick" ]; then args+=(--quick); fi

logs=target/bench-logs
mkdir -p "$logs"
benches=(
    "ucq ucq"
    "ceq ceq"
    "event-core send"
    "event-core wait"
    "vcpd-tests scale"
)

for b in "${benches[@]}"; do
    set -- $b
    echo "bench.sh: cargo bench -p $1 --bench $2 ${args[*]:-}" >&2
    cargo bench --locked -q -p "$1" --bench "$2" -- "${args[@]}" >"$logs/$2.txt" 2>"$logs/$2.err" || {
        echo "bench.sh: the $2 benchmark failed; see $logs/$2.err" >&2
        tail -n 20 "$logs/$2.err" >&2
        exit 1
    }
done

cpus=$(nproc)
model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
printf '\nBenchmarks, %s (%s CPUs: %s)%s\n\n' "$(date -u +%Y-%m-%d)" "$cpus" "$model" \
    "$([ ${#args[@]} -gt 0 ] && echo ', --quick')"
for b in "${benches[@]}"; do set -- $b; cat "$logs/$2.txt"; done | grep '^BENCH' | awk -F'\t' '
    BEGIN {
        printf "| %-6s | %-58s | %12s | %-7s | %-8s | %-8s | %-26s |\n",
            "bench", "case", "median", "unit", "ratio", "vs peer", "spread"
        printf "|%s|%s|%s|%s|%s|%s|%s|\n", "--------", "------------------------------------------------------------", "--------------", "---------", "----------", "----------", "----------------------------"
    }
    { gsub(/\|/, "+", $3)
      printf "| %-6s | %-58s | %12s | %-7s | %-8s | %-8s | %-26s |\n", $2, $3, $4, $5, $6, $7, $8 }
'
