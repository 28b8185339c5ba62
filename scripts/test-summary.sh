#!/bin/sh
# scripts/test-summary.sh: prints each test runner's own summary line from a
# ctest run, so CI shows "[  PASSED  ] 21 test(s)." (cmocka), "Ran 19 tests"
# + "OK" (unittest) and "replayed N inputs" (fuzz corpora) per test, not only
# ctest's pass/fail. Usage: scripts/test-summary.sh BUILD_DIR
log="$1/Testing/Temporary/LastTest.log"
[ -f "$log" ] || { echo "test-summary: no $log" >&2; exit 0; }
awk '
/^[0-9]+\/[0-9]+ Test: / { name = $3; next }
/^\[  PASSED  \]|^\[  FAILED  \]|^Ran [0-9]+ tests? in|^OK( \(|$)|^FAILED \(|^replayed [0-9]+ inputs/ {
    printf "  %-34s %s\n", name, $0
}' "$log"
