# shellcheck shell=bash disable=SC2034
# bench/lib.sh: shell helpers for bench/agent_bench.sh (sourced, not run).
#
# - docker access that survives a dockerd that is briefly stopped (SIGSTOP) or restarted by
#   another test on the same machine: every call has a timeout and is retried with backoff;
# - container fleet management limited to containers named tbench-<N>;
# - process-tree accounting from /proc: CPU ticks (utime+stime of every live process of the
#   tree plus cutime+cstime, so children that exited inside the window still count), VmRSS and
#   thread counts summed over the tree.
#
# Nothing here kills a process it was not given by pid; containers are only ever removed by a
# name matching ^tbench-[0-9]+$.

BENCH_IMAGE=${BENCH_IMAGE:-tether-test:busybox}
BENCH_PREFIX=tbench-
BENCH_LABEL=tether-bench=1
DOCKER_SOCK=${DOCKER_SOCK:-/var/run/docker.sock}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# dk ARGS...: docker ARGS with a 60 s timeout, retried up to 6 times with backoff.
dk() {
    local i rc=1
    for i in 1 2 3 4 5 6; do
        timeout 60 docker "$@" && return 0
        rc=$?
        sleep $((i * 2))
    done
    log "docker $* failed after retries (rc $rc)"
    return "$rc"
}

# docker_ping: 0 when the engine answers /_ping within 5 s.
docker_ping() {
    [ "$(curl -s -m 5 --unix-socket "$DOCKER_SOCK" http://localhost/_ping 2>/dev/null)" = OK ]
}

# docker_wait SECONDS: waits until the engine answers; 1 on timeout.
docker_wait() {
    local deadline=$((SECONDS + $1))
    while [ $SECONDS -lt $deadline ]; do
        docker_ping && return 0
        sleep 1
    done
    return 1
}

# docker_ensure: makes sure an engine answers. Waits for one (it may be stopped or restarting
# under another test); starts `dockerd --storage-driver=vfs` only when no dockerd process exists.
# Sets STARTED_DOCKERD=1 when it started one (it is left running: other users share it).
docker_ensure() {
    docker_wait 5 && return 0
    if pgrep -x dockerd >/dev/null; then
        log "dockerd exists but does not answer; waiting up to 120 s"
        docker_wait 120 && return 0
        log "dockerd still does not answer"
        return 1
    fi
    log "no dockerd: starting 'dockerd --storage-driver=vfs' (log $OUT/dockerd.log)"
    setsid dockerd --storage-driver=vfs >"$OUT/dockerd.log" 2>&1 </dev/null &
    STARTED_DOCKERD=1
    docker_wait 60
}

# image_ensure: imports $BENCH_IMAGE from busybox-static when the engine lacks it.
image_ensure() {
    if timeout 60 docker image inspect "$BENCH_IMAGE" >/dev/null 2>&1; then
        return 0
    fi
    log "importing $BENCH_IMAGE from /bin/busybox"
    local root="$OUT/rootfs" a
    rm -rf "$root"
    mkdir -p "$root/bin" "$root/tmp" "$root/proc" "$root/sys" "$root/dev" "$root/etc"
    cp /bin/busybox "$root/bin/busybox"
    for a in sh sleep cat dd yes true false echo ls ps top env grep head; do
        ln -sf busybox "$root/bin/$a"
    done
    tar -C "$root" -c . | dk import - "$BENCH_IMAGE" >/dev/null
}

# container_create N: makes tbench-N exist and run. Retries; a half-made container (created but
# not started, e.g. when dockerd stopped mid-call) is started or recreated.
container_create() {
    local name=$BENCH_PREFIX$1 i state
    for i in 1 2 3 4 5 6; do
        if timeout 90 docker run -d --name "$name" --label "$BENCH_LABEL" \
            --log-driver none "$BENCH_IMAGE" \
            sh -c 'while :; do sleep 1; done' >/dev/null 2>&1; then
            return 0
        fi
        docker_wait 60
        state=$(timeout 30 docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null)
        case "$state" in
        true) return 0 ;;
        false) timeout 60 docker start "$name" >/dev/null 2>&1 && return 0
               timeout 60 docker rm -f "$name" >/dev/null 2>&1 ;;
        esac
        sleep $((i * 2))
    done
    log "could not create $name"
    return 1
}

# fleet_names: names of every existing tbench-N container, one a line.
fleet_names() {
    local out
    out=$(dk ps -a --filter "name=$BENCH_PREFIX" --format '{{.Names}}') || return 1
    printf '%s\n' "$out" | grep -E "^${BENCH_PREFIX}[0-9]+\$"
    return 0
}

# fleet_running_count: how many tbench-N containers are running.
fleet_running_count() {
    dk ps --filter "name=$BENCH_PREFIX" --format '{{.Names}}' | grep -cE "^${BENCH_PREFIX}[0-9]+\$"
}

# fleet_grow FROM TO PARALLEL: creates tbench-FROM..tbench-TO, PARALLEL at a time.
# Prints the number of containers that could not be made on stdout.
fleet_grow() {
    local from=$1 to=$2 par=$3 i running=0 failfile
    failfile=$(mktemp)
    for ((i = from; i <= to; i++)); do
        { container_create "$i" || echo "$i" >>"$failfile"; } &
        running=$((running + 1))
        if [ "$running" -ge "$par" ]; then
            wait -n
            running=$((running - 1))
        fi
    done
    wait
    wc -l <"$failfile"
    rm -f "$failfile"
}

# fleet_remove [SECONDS]: removes every tbench-N container (never anything else), 8 batches at a
# time, in passes until none is left or SECONDS (default 300) have gone by. Returns 1, with a log
# line that says how to finish the job, when some remain (a wedged engine can hang `docker rm`).
fleet_remove() {
    local deadline=$((SECONDS + ${1:-300})) names left
    while :; do
        names=$(fleet_names) || names=""
        [ -n "$names" ] || return 0
        [ $SECONDS -lt $deadline ] || break
        printf '%s\n' "$names" |
            xargs -r -n 10 -P 8 timeout $((deadline - SECONDS > 120 ? 120 : deadline - SECONDS + 1)) \
                docker rm -f >/dev/null 2>&1
        docker_wait 30
    done
    left=$(printf '%s\n' "$names" | wc -l)
    log "$left tbench-* containers could not be removed (the engine does not answer for them);"
    log "remove them later with: docker ps -a --format '{{.Names}}' | grep -E '^tbench-[0-9]+\$' | xargs -r docker rm -f"
    return 1
}

# tree_pids ROOT: ROOT and all its descendants, one pid a line.
tree_pids() {
    ps -e -o pid=,ppid= | awk -v root="$1" '
        { par[$1] = $2; pid[NR] = $1 }
        END {
            for (i = 1; i <= NR; i++) {
                p = pid[i]
                for (d = 0; d < 64 && p != "" && p > 1; d++) {
                    if (p == root) { print pid[i]; break }
                    p = par[p]
                }
            }
        }'
}

# tree_stat ROOT: "ticks rss_kb threads procs own_ticks" summed over the process tree of ROOT.
# ticks = utime+stime+cutime+cstime (clock ticks), rss from VmRSS, threads from Threads;
# own_ticks = utime+stime of ROOT alone (all its threads, none of its child processes).
# Pure bash reads (no fork per process); a process that exits meanwhile is skipped.
tree_stat() {
    local p line k v rest ticks=0 rss=0 thr=0 procs=0 own=0
    local -a f
    for p in $(tree_pids "$1"); do
        { read -r line </proc/"$p"/stat; } 2>/dev/null || continue
        line=${line##*) }
        read -r -a f <<<"$line"
        [ "${#f[@]}" -ge 15 ] || continue
        ticks=$((ticks + f[11] + f[12] + f[13] + f[14]))
        [ "$p" = "$1" ] && own=$((f[11] + f[12]))
        procs=$((procs + 1))
        while read -r k v rest; do
            case $k in
            VmRSS:) rss=$((rss + v)) ;;
            Threads:) thr=$((thr + v)) ;;
            esac
        done 2>/dev/null </proc/"$p"/status
    done
    echo "$ticks $rss $thr $procs $own"
}

# fleet_ids FILE: writes "<64-hex id> <name>" of every tbench-N container to FILE.
fleet_ids() {
    dk ps -a --no-trunc --filter "name=$BENCH_PREFIX" --format '{{.ID}} {{.Names}}' |
        grep -E " ${BENCH_PREFIX}[0-9]+\$" >"$1"
}

# proxy_count LOG T0 T1 IDS: "total ping fleet other" requests logged by docker_proxy.py in
# [T0, T1). ping: /_ping. fleet: about the measured fleet, i.e. a path naming a tbench container
# (id from the IDS file, or name), a container list or a stats call; these are what a collector
# would do per interval. other: the rest (the events stream, inspects of containers that other
# users of the engine create and destroy, the docker CLI's fallbacks to images/networks/...).
proxy_count() {
    [ -f "$1" ] || { echo "0 0 0 0"; return; }
    awk -v t0="$2" -v t1="$3" '
        FILENAME == ids { fleet[$1] = 1; next }
        $1 >= t0 && $1 < t1 {
            tot++
            p = $4
            if (p ~ /\/_ping$/) { ping++; next }
            hit = (p ~ /\/containers\/json/ || p ~ /\/stats/ || p ~ /\/tbench-[0-9]+\//)
            if (!hit) {
                sub(/\?.*/, "", p)
                n = split(p, seg, "/")
                for (i = 1; i <= n; i++) if (seg[i] in fleet) hit = 1
            }
            if (hit) fl++; else other++
        }
        END { printf "%d %d %d %d\n", tot, ping, fl, other }' ids="$4" "$4" "$1"
}

# kill_pid PID [GRACE]: SIGTERM to PID (one we started), SIGKILL after GRACE seconds.
kill_pid() {
    local pid=$1 grace=${2:-10} i
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < grace * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    return 0
}
