#!/bin/sh
# fuzz/run.sh: runs every libFuzzer target of a build for a fixed time.
#
# Usage: fuzz/run.sh BUILD_DIR SECONDS [TARGET...]
# Each target fuzzes for SECONDS, starting from its committed seed corpus
# (fuzz/corpus/<name>, read only) plus what earlier runs found
# (BUILD_DIR/fuzz-corpus/<name>, where new inputs go), with its dictionary
# (fuzz/<name>.dict) when there is one. Crashes, leaks and timeouts land in
# BUILD_DIR/fuzz-artifacts/<name>/; the whole log in BUILD_DIR/fuzz-logs/.
# Prints one line per target (executions, exec/s, coverage, features,
# corpus, findings) and exits 1 if any target found something in this run.
# Files an earlier run left in the artifacts directory are named in the
# line but do not fail this one: they are inputs for whoever fixes them
# (a fixed one goes into fuzz/corpus/<name>, then delete it here).
set -u
build="$1"
seconds="$2"
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
targets="$*"
if [ -z "$targets" ]; then
    for src in "$root"/fuzz/fuzz_*.c; do
        n=$(basename "$src" .c)
        targets="$targets ${n#fuzz_}"
    done
fi
mkdir -p "$build/fuzz-logs"
status=0
printf '%-10s %12s %8s %6s %7s %7s  %s\n' target executions exec/s cov ft corpus findings
for t in $targets; do
    bin="$build/fuzz_$t"
    if [ ! -x "$bin" ]; then
        echo "fuzz/run.sh: $bin is missing (build with -DMIKA_FUZZ=ON)" >&2
        exit 2
    fi
    work="$build/fuzz-corpus/$t"
    art="$build/fuzz-artifacts/$t"
    log="$build/fuzz-logs/$t.log"
    mkdir -p "$work" "$art"
    stamp="$build/fuzz-logs/$t.started"
    : >"$stamp"
    dict=""
    [ -f "$root/fuzz/$t.dict" ] && dict="-dict=$root/fuzz/$t.dict"
    # -timeout: one input running 10 s is a hang; -rss_limit_mb: the
    # sanitizers' quarantine needs headroom, a leak will still show.
    # shellcheck disable=SC2086
    "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=4096 \
        $dict -artifact_prefix="$art/" "$work" "$root/fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p')
    found=$(find "$art" -type f -newer "$stamp" | wc -l)
    older=$(find "$art" -type f ! -newer "$stamp" | wc -l)
    if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
        status=1
        note="$found file(s) in $art (exit $rc), see $log"
    else
        note="none"
    fi
    if [ "$older" -ne 0 ]; then
        note="$note; $older from earlier runs in $art"
    fi
    printf '%-10s %12s %8s %6s %7s %7s  %s\n' "$t" "${execs:-?}" "${speed:-?}" "${cov:-?}" \
        "${ft:-?}" "${corp:-?}" "$note"
done
exit $status
