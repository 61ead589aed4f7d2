#!/bin/bash
# dockerd.sh: a real Docker engine and a local image for tether's integration tests.
#
#   scripts/dockerd.sh start    reuse the dockerd answering on the socket, or start one
#   scripts/dockerd.sh stop     stop the dockerd this script started (--force: any dockerd)
#   scripts/dockerd.sh status   say whether dockerd answers; exit 0 when it does
#   scripts/dockerd.sh image    build tether-test:busybox unless it is already usable
#                               (--rebuild: build it anyway)
#
# No image registry is reachable from these machines, so the test image is made
# locally: a root file system holding /bin/busybox (package busybox-static) plus a
# symlink per applet (sh, sleep, cat, dd, yes, nc, ping, wget, ...), imported with
# `docker import`.
#
# A dockerd this script starts runs as `dockerd --storage-driver=vfs --live-restore`
# in its own session, logs to /tmp/tether-dockerd.log and is recorded in
# /tmp/tether-dockerd.pid (dockerd itself also writes /var/run/docker.pid).
# vfs works on any file system (no overlay mounts needed inside a VM or a
# container). --live-restore keeps containers running while dockerd restarts:
# the fault tests kill and restart dockerd, and other users of the same engine
# (benchmarks) should not lose their containers when that happens.
#
# A second engine beside the main one needs its own -H, --data-root, --exec-root
# and --pidfile, and must NOT be given --bridge none: dockerd then deletes the
# host's docker0 interface, which breaks the bridge network of the main engine.
#
# Environment: DOCKER_SOCK (default /var/run/docker.sock), TETHER_DOCKERD_LOG,
# TETHER_DOCKERD_PIDFILE, TETHER_DOCKERD_ARGS (extra dockerd arguments; with a
# DOCKER_SOCK of its own, pass the flags named above here), TETHER_TEST_IMAGE
# (default tether-test:busybox).
set -euo pipefail

SOCK=${DOCKER_SOCK:-/var/run/docker.sock}
LOG=${TETHER_DOCKERD_LOG:-/tmp/tether-dockerd.log}
PIDFILE=${TETHER_DOCKERD_PIDFILE:-/tmp/tether-dockerd.pid}
IMAGE=${TETHER_TEST_IMAGE:-tether-test:busybox}
START_TIMEOUT=60
export DOCKER_HOST=unix://$SOCK    # for the docker CLI calls below
# Applets the tests call directly (not only through `sh -c`): checked in the image.
NEEDED_APPLETS="sh sleep cat dd yes echo seq head tail wc nc wget ping timeout"

die() { echo "dockerd.sh: $*" >&2; exit 1; }
say() { echo "dockerd.sh: $*"; }

# ping: 0 when the engine answers GET /_ping with OK within 3 s.
ping_engine() {
    [[ -S $SOCK ]] || return 1
    if command -v curl >/dev/null 2>&1; then
        [[ $(curl -s --max-time 3 --unix-socket "$SOCK" http://docker/_ping 2>/dev/null) == OK ]]
    else
        timeout 5 docker version >/dev/null 2>&1
    fi
}

proc_state() { awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null || true; }

# 0 when pid $1 is a live (not zombie) process named dockerd.
is_dockerd() {
    [[ $(cat "/proc/$1/comm" 2>/dev/null) == dockerd && $(proc_state "$1") != Z ]]
}

# Pid of the running dockerd: ours first, then dockerd's own pid file, then a
# process whose command name is exactly "dockerd". With a socket of its own
# (DOCKER_SOCK not the default), only the dockerd this script started counts.
# Prints nothing when none.
dockerd_pid() {
    local f pid files=("$PIDFILE") default_sock=0
    [[ $SOCK == /var/run/docker.sock || $SOCK == /run/docker.sock ]] && default_sock=1
    ((default_sock)) && files+=(/var/run/docker.pid)
    for f in "${files[@]}"; do
        pid=$(cat "$f" 2>/dev/null || true)
        if [[ $pid =~ ^[0-9]+$ ]] && is_dockerd "$pid"; then
            echo "$pid"; return 0
        fi
    done
    ((default_sock)) || return 0
    for f in /proc/[0-9]*/comm; do
        pid=${f#/proc/}; pid=${pid%/comm}
        if is_dockerd "$pid"; then
            echo "$pid"; return 0
        fi
    done
    return 0
}

wait_engine() {
    local deadline=$((SECONDS + $1)) pid=${2:-}
    while ((SECONDS < deadline)); do
        ping_engine && return 0
        if [[ -n $pid ]] && ! is_dockerd "$pid"; then
            return 2
        fi
        sleep 0.5
    done
    return 1
}

cmd_start() {
    if ping_engine; then
        say "reusing the running dockerd (pid $(dockerd_pid)) on $SOCK"
        return 0
    fi
    local pid
    pid=$(dockerd_pid)
    if [[ -n $pid ]]; then
        # A dockerd exists but does not answer: stopped by a test that died
        # mid-fault (SIGSTOP), or still starting. Continue it and wait.
        if [[ $(proc_state "$pid") == T ]]; then
            say "dockerd pid $pid is stopped (SIGSTOP); sending SIGCONT"
            kill -CONT "$pid"
        fi
        say "waiting for dockerd pid $pid to answer"
        wait_engine "$START_TIMEOUT" "$pid" && { say "dockerd pid $pid answers"; return 0; }
        die "dockerd pid $pid does not answer on $SOCK after ${START_TIMEOUT}s"
    fi
    command -v dockerd >/dev/null 2>&1 || die "dockerd not installed (run scripts/deps.sh --test)"
    [[ $(id -u) == 0 ]] || die "starting dockerd needs root"
    # A stale socket (dockerd killed) is removed by dockerd itself; a stale
    # /var/run/docker.pid naming a dead process is overwritten by it.
    # shellcheck disable=SC2086
    setsid dockerd --storage-driver=vfs --live-restore ${TETHER_DOCKERD_ARGS:-} \
        >>"$LOG" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PIDFILE"
    say "started dockerd pid $pid (log $LOG)"
    local rc=0
    wait_engine "$START_TIMEOUT" "$pid" || rc=$?
    if [[ $rc == 0 ]]; then
        say "dockerd answers on $SOCK"
        return 0
    fi
    echo "---- last lines of $LOG" >&2
    tail -n 30 "$LOG" >&2 || true
    if [[ $rc == 2 ]]; then
        rm -f "$PIDFILE"
        die "dockerd exited during start-up"
    fi
    die "dockerd did not answer on $SOCK within ${START_TIMEOUT}s"
}

cmd_stop() {
    local force=0 pid
    [[ ${1:-} == --force ]] && force=1
    if [[ -r $PIDFILE ]]; then
        pid=$(cat "$PIDFILE")
        if ! is_dockerd "$pid"; then
            rm -f "$PIDFILE"
            pid=""
        fi
    else
        pid=""
    fi
    if [[ -z $pid ]]; then
        if [[ $force == 1 ]]; then
            pid=$(dockerd_pid)
        else
            local other
            other=$(dockerd_pid)
            if [[ -n $other ]]; then
                say "dockerd pid $other was not started by this script; left running (use --force)"
            else
                say "no dockerd running"
            fi
            return 0
        fi
    fi
    [[ -n $pid ]] || { say "no dockerd running"; return 0; }
    [[ $(proc_state "$pid") == T ]] && kill -CONT "$pid"
    say "stopping dockerd pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while is_dockerd "$pid" && ((SECONDS < deadline)); do sleep 0.5; done
    if is_dockerd "$pid"; then
        say "dockerd pid $pid ignored SIGTERM for 30s; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
    say "stopped"
}

cmd_status() {
    local pid state owner=other
    pid=$(dockerd_pid)
    [[ -r $PIDFILE && $(cat "$PIDFILE") == "$pid" ]] && owner=dockerd.sh
    if ping_engine; then
        local ver
        ver=$(curl -s --max-time 3 --unix-socket "$SOCK" http://docker/version 2>/dev/null |
              sed -n 's/.*"Version":"\([^"]*\)".*"ApiVersion":"\([^"]*\)".*/engine \1, API \2/p' || true)
        say "up: pid ${pid:-?} (started by $owner), $SOCK answers${ver:+, $ver}"
        return 0
    fi
    if [[ -n $pid ]]; then
        state=$(proc_state "$pid")
        if [[ $state == T ]]; then
            say "hung: dockerd pid $pid is stopped (SIGSTOP); $SOCK does not answer"
        else
            say "not answering: dockerd pid $pid (state $state) does not answer on $SOCK"
        fi
        return 1
    fi
    say "down: no dockerd process"
    return 1
}

# 0 when $IMAGE exists and runs the applets the tests need.
image_usable() {
    docker image inspect "$IMAGE" >/dev/null 2>&1 || return 1
    # shellcheck disable=SC2016
    timeout 60 docker run --rm --name "tit-imagecheck-$$" --network none "$IMAGE" \
        sh -c 'for a in $0; do [ -x /bin/$a ] || { echo "missing $a"; exit 1; }; done' \
        "$NEEDED_APPLETS" >/dev/null 2>&1
}

cmd_image() {
    ping_engine || die "dockerd does not answer on $SOCK (run: $0 start)"
    if [[ ${1:-} != --rebuild ]] && image_usable; then
        say "image $IMAGE present and usable"
        return 0
    fi
    local bb
    bb=$(command -v busybox || true)
    [[ -x /bin/busybox ]] && bb=/bin/busybox
    [[ -n $bb ]] || die "busybox not installed (run scripts/deps.sh --test)"
    file -L "$bb" 2>/dev/null | grep -q 'statically linked' ||
        ldd "$bb" 2>&1 | grep -q 'not a dynamic executable' ||
        die "$bb is not statically linked (install busybox-static)"
    local root
    root=$(mktemp -d /tmp/tether-image.XXXXXX)
    trap 'rm -rf "$root"' RETURN
    mkdir -p "$root"/{bin,dev,etc,proc,sys,tmp,root,var/tmp}
    chmod 1777 "$root/tmp" "$root/var/tmp"
    cp "$bb" "$root/bin/busybox"
    local applet
    for applet in $("$bb" --list); do
        [[ $applet == busybox ]] || ln -sf busybox "$root/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' \
        >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    tar --numeric-owner --owner=0 --group=0 -C "$root" -c . |
        docker import --change 'ENV PATH=/bin' --change 'CMD ["sh"]' \
            --message 'tether integration test image: busybox-static' - "$IMAGE" >/dev/null
    image_usable || die "image $IMAGE built but a test container cannot run the needed applets"
    say "built image $IMAGE ($("$bb" --list | wc -l) applets)"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop "${2:-}" ;;
    status) cmd_status ;;
    image) cmd_image "${2:-}" ;;
    -h|--help|help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" ;;
    *) echo "usage: $0 start|stop [--force]|status|image [--rebuild]" >&2; exit 2 ;;
esac
