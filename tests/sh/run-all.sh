#!/usr/bin/env bash
# Runs every tests/sh/t-*.sh, sums their `N passed, N failed` lines and prints the total the
# same way. A script that hangs (killed after SCRIPT_TIMEOUT seconds) or ends without its
# summary line counts as one failure. A script may ask for a longer limit with a line
# `# run-all-timeout: SECONDS` among its first lines (one that builds or installs on first run).
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../scripts/lib/deps.sh
. "$here/../../scripts/lib/deps.sh"
ensure_test_deps || { echo "cannot install the test dependencies" >&2; echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
for t in "$here"/t-*.sh; do
    echo "== $(basename "$t")"
    limit=${SCRIPT_TIMEOUT:-180}
    own=$(head -n 5 "$t" | sed -n 's/^# run-all-timeout: \([0-9][0-9]*\)$/\1/p')
    [[ -n $own ]] && ((own > limit)) && limit=$own
    out=$(timeout -s KILL "$limit" bash "$t" 2>&1)
    rc=$?
    printf '%s\n' "$out" | sed '$d'
    summary=$(printf '%s\n' "$out" | tail -n 1)
    if [[ $summary =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        passed=$((passed + BASH_REMATCH[1]))
        failed=$((failed + BASH_REMATCH[2]))
        echo "   $summary"
        if ((rc != 0 && BASH_REMATCH[2] == 0)); then
            echo "FAIL - $(basename "$t") exited $rc"
            failed=$((failed + 1))
        fi
    else
        printf '%s\n' "$summary"
        echo "FAIL - $(basename "$t") gave no summary (status $rc)"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
((failed == 0))
