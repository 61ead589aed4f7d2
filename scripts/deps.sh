#!/bin/bash
# deps.sh: install the Debian packages tether needs, idempotently.
#
#   scripts/deps.sh          build dependencies (compiler, libuv, jansson, ...)
#   scripts/deps.sh --test   also what the tests need: clang + sanitizer runtime
#                            (fuzzers), docker.io + busybox-static (integration
#                            tests against a real dockerd), prometheus (promtool),
#                            iproute2, curl, python3, valgrind, procps
#
# Meant for a fresh Debian 12 machine as root (CI), and cheap on a machine that
# already has everything: one dpkg-query checks every package, and apt-get
# (update + install) runs only when something is missing. Exit status: 0 when
# every package is installed at the end, non-zero otherwise.
set -euo pipefail

BUILD_PKGS=(build-essential pkg-config libuv1-dev libhttp-parser-dev libjansson-dev
            libyaml-dev libcmocka-dev libprotobuf-c-dev protobuf-c-compiler libsnappy-dev)
TEST_PKGS=(clang libclang-rt-14-dev docker.io busybox-static prometheus iproute2 curl
           python3 valgrind procps)

want_test=0
for arg in "$@"; do
    case "$arg" in
        --test) want_test=1 ;;
        -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
        *) echo "deps.sh: unknown argument '$arg' (use --test or --help)" >&2; exit 2 ;;
    esac
done

pkgs=("${BUILD_PKGS[@]}")
[[ $want_test == 1 ]] && pkgs+=("${TEST_PKGS[@]}")

# Prints the packages among "$@" that are not fully installed. A package counts
# as present only when dpkg says "install ok installed" (half-configured, or
# removed with its config left, is missing; an unknown name prints nothing).
missing_from() {
    local ok p
    ok=" $(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null |
           awk '$2 == "install" && $3 == "ok" && $4 == "installed" { printf "%s ", $1 }' ||
           true)"
    for p in "$@"; do
        [[ $ok == *" $p "* ]] || echo "$p"
    done
}

mapfile -t missing < <(missing_from "${pkgs[@]}")
if [[ ${#missing[@]} == 0 ]]; then
    echo "deps.sh: all ${#pkgs[@]} packages present"
    exit 0
fi

if [[ $(id -u) != 0 ]]; then
    echo "deps.sh: missing: ${missing[*]}; run as root to install them" >&2
    exit 1
fi

echo "deps.sh: installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Wait for the dpkg lock (another apt run may hold it) and retry flaky downloads.
apt_opts=(-o DPkg::Lock::Timeout=300 -o Acquire::Retries=3)
apt-get "${apt_opts[@]}" update -qq
apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${missing[@]}"

mapfile -t still < <(missing_from "${missing[@]}")
if [[ ${#still[@]} != 0 ]]; then
    echo "deps.sh: still missing after apt-get: ${still[*]}" >&2
    exit 1
fi
echo "deps.sh: done"
