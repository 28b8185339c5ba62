#!/bin/sh
# scripts/valgrind.sh: `make valgrind`: memcheck over a Debug build.
#
# Usage: scripts/valgrind.sh BUILD_DIR JOBS
# Runs every unit test (JOBS at a time), every fuzz corpus replay, and the
# daemon itself under tests/integration/test_http.py, each under valgrind's
# memcheck. Any memory error or definite/indirect leak fails the run
# (valgrind exits 99); the failing log's tail is printed. Each runner's own
# summary line is printed, so CI shows the counts.
set -eu
build=$1
jobs=${2:-2}
logs=$build/valgrind-logs
flags="--error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
--errors-for-leak-kinds=definite,indirect --track-origins=yes --quiet"
mkdir -p "$logs"
rm -f "$logs"/*.log "$logs"/*.rc
# Statistical tests run a tenth of their sizes (tests/unit/test_peers.c).
export MIKA_TEST_LIGHT=1

echo "== valgrind: unit tests, $jobs at a time =="
# One line per test: "name status". xargs keeps going past a failure; the
# summary below decides.
for src in tests/unit/test_*.c; do basename "$src" .c; done |
    xargs -P "$jobs" -I{} sh -c \
        "valgrind $flags '$build/{}' >'$logs/{}.log' 2>&1; echo \$? >'$logs/{}.rc'"
failed=0
for src in tests/unit/test_*.c; do
    n=$(basename "$src" .c)
    rc=$(cat "$logs/$n.rc" 2>/dev/null || echo "no result (not built?)")
    printf '  %-22s %s\n' "$n" "$(grep -E '^\[  (PASSED|FAILED)  \]' "$logs/$n.log" | head -n 1)"
    if [ "$rc" != 0 ]; then
        echo "valgrind: $n exited $rc; its log ends:"
        tail -n 60 "$logs/$n.log"
        failed=1
    fi
done
[ "$failed" = 0 ] || exit 1

echo "== valgrind: fuzz corpus replays =="
for src in fuzz/fuzz_*.c; do
    n=$(basename "$src" .c)
    valgrind $flags "$build/replay_$n" "fuzz/corpus/${n#fuzz_}"
done

echo "== valgrind: the daemon under tests/integration/test_http.py =="
wrapper=$build/mika-valgrind
abs=$(cd "$build" && pwd)
printf '#!/bin/sh\nexec valgrind %s --log-file=%s/valgrind-logs/mika.%%p.log %s/mika "$@"\n' \
    "$flags" "$abs" "$abs" >"$wrapper"
chmod +x "$wrapper"
MIKA_BIN=$abs/mika-valgrind MIKA_TEST_TIMEOUT_SCALE=20 /usr/bin/python3 tests/integration/test_http.py
