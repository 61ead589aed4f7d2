#!/usr/bin/env bash
# Runs every test of tether on this machine (as root), installing what the
# tests need first: Debian packages, a real dockerd and a local busybox image.
#
#   1. build (warnings are errors) and the ASan+UBSan build; start a real dockerd
#   2. cmocka unit tests, plain and under ASan+UBSan
#   3. every libFuzzer harness over its seed corpus plus a short fuzzing run
#   4. integration tests against a real dockerd, plain and with the
#      ASan/LeakSanitizer build (any leak or sanitizer report fails)
#
# Ends with one line "N passed, N failed" (tests counted over all stages) and
# exits non-zero when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
LOG_DIR=${TETHER_TEST_LOGS:-/tmp/tether-test-logs}
rm -rf "$LOG_DIR"; mkdir -p "$LOG_DIR"
passed=0; failed=0; failed_stages=()

stage() { echo; echo "==== $*"; }
# Counts cmocka's "[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s)" lines.
count_cmocka() {
  local p f
  p=$(grep -ahoE '^\[  PASSED  \] [0-9]+ test' "$1" | awk '{s+=$4} END {print s+0}')
  f=$(grep -ahoE '^\[  FAILED  \] [0-9]+ test' "$1" | awk '{s+=$4} END {print s+0}')
  passed=$((passed + p)); failed=$((failed + f))
}
# Counts the integration runner's "N passed, N failed" line.
count_plain() {
  local line
  line=$(grep -aE '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -1)
  if [ -n "$line" ]; then
    passed=$((passed + $(echo "$line" | awk '{print $1}')))
    failed=$((failed + $(echo "$line" | awk '{print $3}')))
  fi
}
run() { # name, command...
  local name=$1; shift
  local log="$LOG_DIR/$name.log"
  if "$@" > >(tee "$log") 2>&1; then sleep 0.2; return 0; fi
  sleep 0.2
  failed_stages+=("$name"); return 1
}

stage "dependencies"
bash scripts/deps.sh --test || { echo "dependency installation failed"; echo "0 passed, 1 failed"; exit 1; }

stage "build (plain and ASan+UBSan)"
if ! run build make -j2 all || ! run build-san make -j2 SAN=1 all; then
  echo "build failed"; echo "0 passed, 1 failed"; exit 1
fi

stage "fuzz harnesses (corpus + ${FUZZ_SECONDS:=15} s each)"
if run fuzz env FUZZ_SECONDS="$FUZZ_SECONDS" make -j2 fuzz-smoke; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

stage "real dockerd (before the unit tests, so their live cgroup cases run too)"
docker_ok=1
run dockerd bash -c 'bash scripts/dockerd.sh start && bash scripts/dockerd.sh image' || docker_ok=0

stage "unit tests"
run unit make -j2 unit; count_cmocka "$LOG_DIR/unit.log"
stage "unit tests under ASan+UBSan"
run unit-san make -j2 SAN=1 unit; count_cmocka "$LOG_DIR/unit-san.log"

if [ "$docker_ok" -ne 1 ]; then
  echo "could not start dockerd"; failed=$((failed + 1))
else
  stage "integration tests"
  run integration bash tests/integration/run.sh --binary build/tether
  count_plain "$LOG_DIR/integration.log"
  stage "integration tests with the ASan/LeakSanitizer build"
  run integration-leak bash tests/integration/run.sh --binary build-san/tether --leak-check
  count_plain "$LOG_DIR/integration-leak.log"
fi

echo
if [ ${#failed_stages[@]} -gt 0 ]; then
  echo "failed stages: ${failed_stages[*]} (logs in $LOG_DIR)"
  [ "$failed" -eq 0 ] && failed=${#failed_stages[@]}
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ ${#failed_stages[@]} -eq 0 ]
