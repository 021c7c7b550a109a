#!/usr/bin/env bash
# Runs one fuzz target for SECONDS, in the background-friendly way the results in
# README.md were gathered: its own working folder under fuzz/logs/ (git-ignored), the
# corpus in fuzz/corpus/TARGET plus the committed seeds, the final stats at the end of
# fuzz/logs/TARGET.out ("Done N runs in S second(s)").
#
#   fuzz/run.sh TARGET SECONDS [extra libFuzzer flags]      e.g. fuzz/run.sh slices 1200
#   fuzz/run.sh end_to_end 1200 -detect_leaks=0
set -euo pipefail
t=$1
s=$2
shift 2
fuzz=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$fuzz/logs/w_$t" "$fuzz/corpus/$t"
cd "$fuzz/logs/w_$t"
RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir "$fuzz" "$t" "$fuzz/corpus/$t" "$fuzz/seeds/$t" -- \
    -max_total_time="$s" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$@" \
    > "$fuzz/logs/$t.out" 2>&1
grep -E "^Done|stat::number_of_executed_units|stat::peak_rss_mb" "$fuzz/logs/$t.out"
