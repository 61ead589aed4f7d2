#!/bin/bash
# run.sh: runs tether's integration tests against a real dockerd.
#
#   tests/integration/run.sh [--binary PATH] [--leak-check] [--no-setup] [-k SUBSTRING] [FILE...]
#
#   --binary PATH   the tether binary (default build/tether; build-san/tether with --leak-check)
#   --leak-check    the binary is the ASan+UBSan build: every agent is stopped with SIGTERM at the
#                   end of its test and the test fails on "ERROR: LeakSanitizer", "runtime error:"
#                   or "AddressSanitizer" in its stderr; deadlines are doubled, RSS not checked
#   --no-setup      do not run scripts/dockerd.sh start/image first
#   -k SUBSTRING    only the test functions whose name contains SUBSTRING
#   FILE...         test files (default: every tests/integration/test_*.py), e.g. test_basic.py
#
# Needs root, python3, a dockerd (started here when none answers) and the image
# tether-test:busybox (built here when missing). Each file runs in its own python process;
# the last line is "N passed, N failed" (test functions), and the exit status is non-zero
# when any test failed or a file crashed. Agent logs: /tmp/tether-it-logs/.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2

binary=""
leak=0
setup=1
filter=()
files=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --binary) binary=$2; shift 2 ;;
        --leak-check) leak=1; shift ;;
        --no-setup) setup=0; shift ;;
        -k) filter=(-k "$2"); shift 2 ;;
        -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
        -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
        *) files+=("$1"); shift ;;
    esac
done
if [[ -z $binary ]]; then
    binary=build/tether
    [[ $leak == 1 ]] && binary=build-san/tether
fi
if [[ ! -x $binary ]]; then
    echo "run.sh: $binary not found or not executable (build it: make$([[ $leak == 1 ]] && echo ' SAN=1'))"
    echo "0 passed, 1 failed"
    exit 1
fi
if [[ ${#files[@]} == 0 ]]; then
    files=(tests/integration/test_*.py)
else
    for i in "${!files[@]}"; do
        f=${files[$i]}
        [[ -f $f ]] || f=tests/integration/${f#tests/integration/}
        [[ -f $f ]] || f=tests/integration/test_${files[$i]%.py}.py
        files[i]=$f
    done
fi

if [[ $setup == 1 ]]; then
    if ! bash scripts/dockerd.sh start || ! bash scripts/dockerd.sh image; then
        echo "run.sh: no usable dockerd/image"
        echo "0 passed, 1 failed"
        exit 1
    fi
fi

args=(--binary "$binary")
[[ $leak == 1 ]] && args+=(--leak-check)
passed=0
failed=0
crashed=()
start=$SECONDS
for f in "${files[@]}"; do
    echo "##### $f"
    out=$(mktemp /tmp/tether-it-run.XXXXXX)
    python3 -u "$f" "${args[@]}" "${filter[@]}" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    line=$(grep -E '^RESULT ' "$out" | tail -n 1)
    rm -f "$out"
    if [[ $line =~ passed=([0-9]+)\ failed=([0-9]+) ]]; then
        passed=$((passed + BASH_REMATCH[1]))
        failed=$((failed + BASH_REMATCH[2]))
        if [[ $rc != 0 && ${BASH_REMATCH[2]} == 0 ]]; then
            crashed+=("$f (exit $rc)")
            failed=$((failed + 1))
        fi
    else
        crashed+=("$f (exit $rc, no RESULT line)")
        failed=$((failed + 1))
    fi
done
echo
echo "integration tests: $(basename "$binary")$([[ $leak == 1 ]] && echo ' (leak check)'), $((SECONDS - start)) s"
[[ ${#crashed[@]} -gt 0 ]] && echo "crashed: ${crashed[*]}"
echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
