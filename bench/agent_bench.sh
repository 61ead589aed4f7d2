#!/usr/bin/env bash
# bench/agent_bench.sh: what tether agent costs compared with netdata and with a raw floor, on
# the same real containers, first 100 then 500 of them, in one run.
#
#   bench/agent_bench.sh [--counts "100 500"] [--warmup 15] [--window 60] [--parallel 8]
#                        [--only tether,netdata,raw] [--keep] [--out DIR] [--tether PATH]
#                        [--ready-timeout 600] [--netdata-db dbengine|ram] [--netdata-netdev]
#
# For every container count N (tbench-1..tbench-N: busybox containers from the local image
# tether-test:busybox running `while :; do sleep 1; done`, created ~8 at a time and kept
# between counts) each program is measured alone, in turn:
#   tether   build/tether agent --listen 127.0.0.1:PORT --interval 1   (skipped with a clear line
#            when build/tether is missing or `tether agent --help` fails)
#   netdata  the Debian package (1.37), cgroups collector only, every 1 s, private config dir and
#            port (bench/netdata.conf.in), cgroup v1 files (see bench/README.md)
#   raw      bench/rawread.c: preads the same files from kept-open fds every 1 s
# The program first gets ready (every tbench container visible in its output, at most
# --ready-timeout s), then --warmup s, then a --window s measurement of its whole process tree:
# CPU (utime+stime, and cutime+cstime of exited children, from /proc/<pid>/stat), VmRSS and
# threads summed over the tree, and the Docker API requests it made (its docker socket goes
# through bench/docker_proxy.py, which logs each request; tether's own
# tether_docker_requests_total is read too). Prints a table and the target ratios at the end;
# raw figures go to $OUT/results.tsv.
# netdata names each new container with shell scripts (about 1 s each, one after the other), so
# it is measured last at the first count and kept running, discovering, while the fleet grows;
# at the next count it is measured first, once it shows every container, and stopped before the
# others run. A full run takes about 15-17 minutes here (creating 500 containers ~2 min,
# removing them ~3 min).
#
# Installs what it needs (docker.io busybox-static netdata, gcc), starts dockerd
# (--storage-driver=vfs) only when none exists, imports the image when missing. On exit
# (trap) it stops the programs it started (by pid) and removes the tbench-* containers (and
# nothing else) unless --keep. Docker calls time out and are retried: another test may pause
# or restart dockerd under us.
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
# shellcheck source=SCRIPTDIR/lib.sh
. "$HERE/lib.sh"

COUNTS=${BENCH_COUNTS:-"100 500"}
WARMUP=${BENCH_WARMUP:-15}
WINDOW=${BENCH_WINDOW:-60}
PARALLEL=${BENCH_PARALLEL:-8}
ONLY=${BENCH_ONLY:-tether,netdata,raw}
KEEP=0
OUT=${BENCH_OUT:-/tmp/tether-bench.$(date +%Y%m%d-%H%M%S)}
TETHER=${BENCH_TETHER:-$ROOT/build/tether}
READY_TIMEOUT=${BENCH_READY_TIMEOUT:-600}
NETDATA_DB=${BENCH_NETDATA_DB:-dbengine}
NETDATA_NETDEV=${BENCH_NETDATA_NETDEV:-0}
TETHER_PORT=${BENCH_TETHER_PORT:-19180}
NETDATA_PORT=${BENCH_NETDATA_PORT:-19181}
SAMPLE_EVERY=5

CMDLINE=$(printf '%q ' "$0" "$@")

usage() { sed -n '2,34p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case $1 in
    --counts) COUNTS=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --window) WINDOW=$2; shift ;;
    --parallel) PARALLEL=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --keep) KEEP=1 ;;
    --out) OUT=$2; shift ;;
    --tether) TETHER=$2; shift ;;
    --ready-timeout) READY_TIMEOUT=$2; shift ;;
    --netdata-db) NETDATA_DB=$2; shift ;;
    --netdata-netdev) NETDATA_NETDEV=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

wants() { case ",$ONLY," in *",$1,"*) return 0 ;; esac; return 1; }

mkdir -p "$OUT"
RESULTS=$OUT/results.tsv
HZ=$(getconf CLK_TCK)
STARTED_DOCKERD=0
declare -A P_PID P_PROXY P_DIR    # per started program: its pid, its proxy's pid, its directory

echo "# command: $CMDLINE"
echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  host: $(uname -r), $(nproc) cpus, $(awk '/MemTotal/ {printf "%.0f MB", $2/1024}' /proc/meminfo)"
echo "# counts: $COUNTS  warm-up: ${WARMUP}s  window: ${WINDOW}s  parallel create: $PARALLEL  programs: $ONLY  out: $OUT"

# ---------------------------------------------------------------------------------------------
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local p
    for p in "${!P_PID[@]}"; do prog_stop "$p"; done
    if [ "$KEEP" = 0 ]; then
        log "removing tbench-* containers"
        fleet_remove 300
    else
        log "--keep: tbench-* containers left running"
    fi
    [ "$STARTED_DOCKERD" = 1 ] && log "note: this run started dockerd; it is left running"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
install_missing() {
    local want=() p
    command -v dockerd >/dev/null || want+=(docker.io)
    [ -x /bin/busybox ] || want+=(busybox-static)
    command -v gcc >/dev/null || want+=(gcc)
    command -v curl >/dev/null || want+=(curl)
    if wants netdata && ! command -v netdata >/dev/null; then want+=(netdata); fi
    [ ${#want[@]} -eq 0 ] && return 0
    log "installing: ${want[*]}"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y "${want[@]}" >"$OUT/apt.log" 2>&1; then
        apt-get update >>"$OUT/apt.log" 2>&1
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${want[@]}" >>"$OUT/apt.log" 2>&1 ||
            { log "apt-get install failed, see $OUT/apt.log"; return 1; }
    fi
    for p in "${want[@]}"; do log "installed $p"; done
}

# The package may start a system netdata (a machine with an init system): stop it through the
# service manager so it neither competes for CPU nor holds port 19999.
netdata_stop_service() {
    pgrep -x netdata >/dev/null || return 0
    log "a netdata service is running: stopping it"
    if [ -d /run/systemd/system ]; then
        systemctl stop netdata
    elif [ -x /etc/init.d/netdata ]; then
        /etc/init.d/netdata stop
    fi
    sleep 2
    pgrep -x netdata >/dev/null && log "warning: a netdata not started by this script still runs"
    return 0
}

build_rawread() {
    mkdir -p "$ROOT/build/bench"
    RAWREAD=$ROOT/build/bench/rawread
    gcc -std=gnu11 -O2 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wold-style-definition -Wpointer-arith -Wformat=2 -Wvla -Wundef -Wwrite-strings \
        -Wmissing-declarations -Wnull-dereference -Wno-unused-parameter -D_GNU_SOURCE \
        -o "$RAWREAD" "$HERE/rawread.c"
}

TETHER_OK=0
TETHER_SKIP_WHY=""
TETHER_DOCKER_ARGS=()
check_tether() {
    if [ ! -x "$TETHER" ]; then
        TETHER_SKIP_WHY="$TETHER does not exist (build it with make)"
        return 1
    fi
    local help
    if ! help=$(timeout 10 "$TETHER" agent --help 2>&1); then
        TETHER_SKIP_WHY="'$TETHER agent --help' fails"
        return 1
    fi
    TETHER_OK=1
    # Route its docker socket through the counting proxy when it has an option for that;
    # DOCKER_HOST is set in its environment as well. Otherwise its own counter is used.
    local opt line
    for opt in --docker-socket --docker-sock --docker; do
        line=$(grep -E -- "(^|[^-[:alnum:]])$opt([^-[:alnum:]]|\$)" <<<"$help" | head -1)
        [ -n "$line" ] || continue
        if grep -qiE 'url|unix://' <<<"$line"; then
            TETHER_DOCKER_ARGS=("$opt" "unix://@SOCK@")
        else
            TETHER_DOCKER_ARGS=("$opt" "@SOCK@")
        fi
        break
    done
}

# ---------------------------------------------------------------------------------------------
# seen_<prog>: how many tbench containers the program shows (tether: distinct names on /metrics).
seen_tether() {
    curl -s -m 5 "http://127.0.0.1:$TETHER_PORT/metrics" 2>/dev/null |
        grep -oE "name=\"${BENCH_PREFIX}[0-9]+\"" | sort -u | wc -l
}
seen_netdata() {
    curl -s -m 5 "http://127.0.0.1:$NETDATA_PORT/api/v1/charts" 2>/dev/null |
        grep -oE "\"cgroup_${BENCH_PREFIX}[0-9]+\\.cpu\"" | sort -u | wc -l
}
seen_raw() {    # last container count rawread reported
    grep -oE '^rawread: [0-9]+ containers' "$1/stderr" 2>/dev/null | tail -1 | awk '{print $2}'
}
# tether_req_counter: "total ping" from tether_docker_requests_total, or "" when absent.
tether_req_counter() {
    curl -s -m 5 "http://127.0.0.1:$TETHER_PORT/metrics" 2>/dev/null |
        awk '/^tether_docker_requests_total[{ ]/ { t += $NF; if ($0 ~ /ping/) p += $NF; n++ }
             END { if (n) printf "%d %d\n", t, p }'
}

netdata_config() {    # netdata_config DIR
    local d=$1
    mkdir -p "$d/etc" "$d/cache" "$d/lib" "$d/log" "$d/run"
    sed -e "s|@DIR@|$d|g" -e "s|@PORT@|$NETDATA_PORT|g" -e "s|@DBMODE@|$NETDATA_DB|g" \
        "$HERE/netdata.conf.in" >"$d/etc/netdata.conf"
    # This host is hybrid (v1 controllers + a cgroup2 mount that holds only PSI files). netdata's
    # "auto" picks the cgroup2 side there and then sees CPU and pressure only; read the v1
    # controllers like tether and rawread do.
    if [ -d /sys/fs/cgroup/cpuacct ]; then
        printf '\tuse unified cgroups = no\n' >>"$d/etc/netdata.conf"
    fi
    if [ "$NETDATA_NETDEV" = 1 ]; then
        # netdata charts container traffic from the host side veth in /proc/net/dev (proc plugin).
        sed -i 's/^\tproc = no$/\tproc = yes/' "$d/etc/netdata.conf"
        {
            printf '\n[plugin:proc]\n'
            local m
            for m in /proc/pagetypeinfo /proc/stat /proc/uptime /proc/loadavg \
                /proc/sys/kernel/random/entropy_avail /proc/pressure /proc/interrupts \
                /proc/softirqs /proc/vmstat /proc/meminfo /sys/kernel/mm/ksm /sys/block/zram \
                /sys/devices/system/edac/mc /sys/devices/system/node /proc/net/wireless \
                /proc/net/sockstat /proc/net/sockstat6 /proc/net/netstat /proc/net/sctp/snmp \
                /proc/net/softnet_stat /proc/net/ip_vs/stats /sys/class/infiniband \
                /proc/net/stat/conntrack /proc/net/stat/synproxy /proc/diskstats /proc/mdstat \
                /proc/net/rpc/nfsd /proc/net/rpc/nfs /proc/spl/kstat/zfs/arcstats \
                /proc/spl/kstat/zfs/pool/state /sys/fs/btrfs ipc /sys/class/power_supply; do
                printf '\t%s = no\n' "$m"
            done
            printf '\t/proc/net/dev = yes\n'
        } >>"$d/etc/netdata.conf"
    fi
    touch "$d/etc/.opt-out-from-anonymous-statistics"
    mkdir -p "$d/etc/cloud.d"
    printf '[global]\n\tenabled = no\n' >"$d/etc/cloud.d/cloud.conf"
}

# prog_start PROG N: starts PROG (and, but for raw, a counting proxy for its docker socket) in
# $OUT/<PROG>-from-n<N>/; records P_PID, P_PROXY, P_DIR.
prog_start() {
    local prog=$1 n=$2
    local dir=$OUT/$prog-from-n$n
    mkdir -p "$dir"
    local sock=$dir/docker.sock proxy_pid="" pid="" i
    if [ "$prog" != raw ]; then
        python3 "$HERE/docker_proxy.py" "$sock" "$DOCKER_SOCK" "$dir/docker-requests.log" \
            2>"$dir/proxy.stderr" &
        proxy_pid=$!
        for ((i = 0; i < 50; i++)); do [ -S "$sock" ] && break; sleep 0.1; done
    fi
    case $prog in
    tether)
        local args=() a
        for a in "${TETHER_DOCKER_ARGS[@]+"${TETHER_DOCKER_ARGS[@]}"}"; do
            args+=("${a//@SOCK@/$sock}")
        done
        echo "$TETHER agent --listen 127.0.0.1:$TETHER_PORT --interval 1 ${args[*]+"${args[*]}"}" >"$dir/cmd"
        DOCKER_HOST=unix://$sock "$TETHER" agent --listen "127.0.0.1:$TETHER_PORT" --interval 1 \
            "${args[@]+"${args[@]}"}" >"$dir/stdout" 2>"$dir/stderr" &
        pid=$!
        ;;
    netdata)
        netdata_config "$dir/nd"
        echo "netdata -c $dir/nd/etc/netdata.conf -D -P $dir/nd/run/netdata.pid" >"$dir/cmd"
        (cd "$dir/nd" && DO_NOT_TRACK=1 DOCKER_HOST=unix://$sock \
            exec netdata -c "$dir/nd/etc/netdata.conf" -D -P "$dir/nd/run/netdata.pid") \
            >"$dir/stdout" 2>"$dir/stderr" &
        pid=$!
        ;;
    raw)
        echo "$RAWREAD -i 1000" >"$dir/cmd"
        "$RAWREAD" -i 1000 >"$dir/stdout" 2>"$dir/stderr" &
        pid=$!
        ;;
    esac
    P_PID[$prog]=$pid
    P_PROXY[$prog]=$proxy_pid
    P_DIR[$prog]=$dir
    log "$prog started: pid $pid ($(cat "$dir/cmd"))"
}

# prog_stop PROG: SIGTERM to the program (then anything left of its tree: all ours), then its
# proxy. Forgets it.
prog_stop() {
    local prog=$1 pid=${P_PID[$1]:-} left p
    if [ -n "$pid" ]; then
        left=$(tree_pids "$pid")
        kill_pid "$pid" 20
        for p in $left; do kill_pid "$p" 2; done
    fi
    kill_pid "${P_PROXY[$prog]:-}" 5
    unset "P_PID[$prog]" "P_PROXY[$prog]"
}

# wait_ready PROG N: waits until PROG shows N tbench containers; prints what it saw.
wait_ready() {
    local prog=$1 n=$2 seen=0 deadline=$((SECONDS + READY_TIMEOUT)) pid=${P_PID[$1]}
    while [ $SECONDS -lt $deadline ]; do
        kill -0 "$pid" 2>/dev/null || { echo "-1"; return 1; }
        case $prog in
        tether) seen=$(seen_tether) ;;
        netdata) seen=$(seen_netdata) ;;
        raw) seen=$(seen_raw "${P_DIR[$prog]}"); seen=${seen:-0} ;;
        esac
        [ "${seen:-0}" -ge "$n" ] && { echo "$seen"; return 0; }
        sleep 2
    done
    echo "$seen"
    return 1
}

# prog_measure PROG N: waits until PROG is ready, warms up, measures over the window and
# appends a line to $RESULTS. The program keeps running.
prog_measure() {
    local prog=$1 n=$2 pid=${P_PID[$1]} dir=${P_DIR[$1]}
    local plog=$dir/docker-requests.log
    log "$prog at N=$n: waiting until it shows $n tbench containers"
    local t_start=$SECONDS seen ready_s
    seen=$(wait_ready "$prog" "$n") ||
        log "$prog: shows $seen of $n tbench containers after $((SECONDS - t_start))s (going on)"
    ready_s=$((SECONDS - t_start))
    if ! kill -0 "$pid" 2>/dev/null; then
        log "$prog exited early; see $dir/stderr"
        tail -5 "$dir/stderr" >&2
        printf '%s\t%s\tFAILED\n' "$n" "$prog" >>"$RESULTS"
        return 1
    fi
    log "$prog: ready after ${ready_s}s ($seen shown); warm-up ${WARMUP}s"
    sleep "$WARMUP"

    local dpid0 dpid1 s0 s1 d0 d1 t0 t1 c0="" c1="" rss_max=0 thr_max=0 st_rss st_thr
    dpid0=$(pgrep -xo dockerd)
    [ "$prog" = tether ] && c0=$(tether_req_counter)
    t0=$(date +%s.%N); s0=$(tree_stat "$pid"); d0=$(tree_stat "${dpid0:-0}")
    local end=$((SECONDS + WINDOW)) now
    while :; do
        read -r _ st_rss st_thr _ <<<"$(tree_stat "$pid")"
        [ "$st_rss" -gt "$rss_max" ] && rss_max=$st_rss
        [ "$st_thr" -gt "$thr_max" ] && thr_max=$st_thr
        now=$SECONDS
        [ "$now" -ge "$end" ] && break
        sleep $((end - now < SAMPLE_EVERY ? end - now : SAMPLE_EVERY))
    done
    t1=$(date +%s.%N); s1=$(tree_stat "$pid"); d1=$(tree_stat "${dpid0:-0}")
    dpid1=$(pgrep -xo dockerd)
    [ "$dpid0" = "$dpid1" ] || d1="restarted"
    [ "$prog" = tether ] && c1=$(tether_req_counter)
    local seen_end=$seen
    case $prog in
    tether) seen_end=$(seen_tether) ;;
    netdata) seen_end=$(seen_netdata) ;;
    raw) seen_end=$(seen_raw "$dir") ;;
    esac

    # Docker requests in the window: from the proxy log; for tether, its own counter when its
    # socket did not go through the proxy (nothing logged at all).
    local req req_src=proxy ids=$OUT/fleet-ids.txt
    if [ "$prog" = raw ]; then
        req="0 0 0 0"; req_src="none (reads files only)"
    elif [ -s "$plog" ]; then
        fleet_ids "$ids"
        req=$(proxy_count "$plog" "$t0" "$t1" "$ids")
    elif [ "$prog" = tether ] && [ -n "$c0" ] && [ -n "$c1" ]; then
        local a0 p0 a1 p1
        read -r a0 p0 <<<"$c0"
        read -r a1 p1 <<<"$c1"
        req="$((a1 - a0)) $((p1 - p0)) $(((a1 - a0) - (p1 - p0))) 0"
        req_src="tether_docker_requests_total (fleet = all but ping)"
    else
        req="? ? ? ?"; req_src="unknown (no proxy traffic, no counter)"
    fi
    local all_req=0
    [ -s "$plog" ] && all_req=$(wc -l <"$plog")

    awk -v n="$n" -v prog="$prog" -v hz="$HZ" -v t0="$t0" -v t1="$t1" \
        -v s0="$s0" -v s1="$s1" -v d0="$d0" -v d1="$d1" -v rssmax="$rss_max" -v thrmax="$thr_max" \
        -v req="$req" -v src="$req_src" -v allreq="$all_req" -v seen="${seen_end:-?}" -v ready="$ready_s" '
        function rate(x) { return (x == "?") ? "?" : sprintf("%.1f", x * 60 / w) }
        BEGIN {
            split(s0, a, " "); split(s1, b, " "); split(d0, c, " "); split(d1, d, " ")
            split(req, r, " ")
            w = t1 - t0
            cpu = (b[1] - a[1]) * 1000 / hz / w          # ms of CPU per s
            dcpu = (d1 == "restarted" || d[1] < c[1]) ? "n/a" : sprintf("%.2f", (d[1] - c[1]) * 1000 / hz / w)
            own = (b[5] - a[5]) * 1000 / hz / w          # the main process alone
            printf "%d\t%s\t%.2f\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\t%.1f\t%s\t%.2f\n",
                n, prog, cpu, b[2], rssmax, b[3], thrmax, b[4], rate(r[1]), rate(r[2]),
                rate(r[3]), rate(r[4]), allreq, seen, ready, dcpu, w, src, own
        }' >>"$RESULTS"
    log "$prog at N=$n: cpu ms/s, rss kB, max, threads, max, procs, req/min total ping fleet other: $(tail -1 "$RESULTS" | cut -f3-12 | tr '\t' ' ')"
    return 0
}

# measure PROG N: start, measure, stop.
measure() {
    prog_start "$1" "$2"
    prog_measure "$1" "$2"
    prog_stop "$1"
    if [ "$1" = raw ]; then
        grep 'done:' "${P_DIR[raw]}/stderr" | sed 's/^/    /' >&2
    fi
}

# ---------------------------------------------------------------------------------------------
printf 'n\tprogram\tcpu_ms_per_s\trss_kb\trss_max_kb\tthreads\tthreads_max\tprocs\treq_per_min\tping_per_min\tfleet_per_min\tother_per_min\treq_whole_run\tseen\tready_s\tdockerd_ms_per_s\twindow_s\treq_source\tmain_cpu_ms_per_s\n' >"$RESULTS"

install_missing || exit 1
wants netdata && netdata_stop_service
docker_ensure || { log "no docker engine answers at $DOCKER_SOCK"; exit 1; }
image_ensure || { log "cannot import $BENCH_IMAGE"; exit 1; }
build_rawread || { log "cannot build bench/rawread.c"; exit 1; }
if wants tether && ! check_tether; then
    echo "SKIP tether: $TETHER_SKIP_WHY"
fi
[ "$TETHER_OK" = 1 ] && echo "# tether: $TETHER ($("$TETHER" version 2>/dev/null || echo '?')) docker args: ${TETHER_DOCKER_ARGS[*]:-(DOCKER_HOST only)}"
wants netdata && echo "# netdata: $(netdata -V 2>&1 | head -1), db $NETDATA_DB, netdev $NETDATA_NETDEV"
echo "# docker: server $(dk version --format '{{.Server.Version}}' 2>/dev/null), driver $(dk info --format '{{.Driver}}' 2>/dev/null)"

leftover=$(fleet_names | wc -l)
if [ "$leftover" -gt 0 ]; then
    log "removing $leftover leftover tbench-* containers"
    fleet_remove 300 || exit 1
fi

have=0
last_n=$(for n in $COUNTS; do echo "$n"; done | tail -1)
for n in $COUNTS; do
    if [ "$n" -gt "$have" ]; then
        extra=""
        [ -n "${P_PID[netdata]:-}" ] && extra=" (netdata running, discovering them)"
        log "creating tbench-$((have + 1))..tbench-$n ($PARALLEL at a time)$extra"
        t=$(date +%s.%N)
        fails=$(fleet_grow $((have + 1)) "$n" "$PARALLEL")
        secs=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
        running=$(fleet_running_count)
        echo "# created tbench-$((have + 1))..tbench-$n in ${secs}s ($(awk -v s="$secs" -v k=$((n - have)) 'BEGIN { printf "%.2f", s / k }') s per container, $fails failed)$extra; $running tbench running"
        printf 'create\t%d\t%d\t%s\t%s\n' $((have + 1)) "$n" "$secs" "$fails" >>"$OUT/create.tsv"
        have=$n
        sleep 5
    fi
    # netdata kept from the previous count: measure it first, then stop it.
    if [ -n "${P_PID[netdata]:-}" ]; then
        docker_wait 60 || log "warning: dockerd does not answer (measuring anyway)"
        prog_measure netdata "$n"
        prog_stop netdata
        nd_done=1
    else
        nd_done=0
    fi
    for prog in tether raw netdata; do
        wants "$prog" || continue
        [ "$prog" = netdata ] && [ "$nd_done" = 1 ] && continue
        if [ "$prog" = tether ] && [ "$TETHER_OK" != 1 ]; then
            echo "SKIP tether at N=$n: $TETHER_SKIP_WHY"
            continue
        fi
        docker_wait 60 || log "warning: dockerd does not answer (measuring anyway)"
        if [ "$prog" = netdata ] && [ "$n" != "$last_n" ]; then
            prog_start netdata "$n"
            prog_measure netdata "$n"    # kept running while the fleet grows
        else
            measure "$prog" "$n"
        fi
    done
done
for p in "${!P_PID[@]}"; do prog_stop "$p"; done

echo
echo "Results (CPU over a ${WINDOW}s window, after the program showed every container + ${WARMUP}s warm-up)"
awk -F'\t' 'NR == 1 { next }
    !hdr++ {
        printf "%5s  %-8s %8s %6s %7s %7s %7s %4s %4s %5s  %-24s %7s %5s %6s %8s\n",
            "N", "program", "CPU ms/s", "%core", "main", "RSS MB", "max MB", "thr", "max", "procs",
            "docker req/min", "run req", "seen", "ready", "dockerd"
        printf "%5s  %-8s %8s %6s %7s %7s %7s %4s %4s %5s  %-24s %7s %5s %6s %8s\n",
            "", "", "", "", "ms/s", "", "", "", "", "", "all (ping/fleet/other)", "", "", "s", "ms/s"
    }
    $3 == "FAILED" { printf "%5s  %-8s  FAILED\n", $1, $2; next }
    {
        busy = ($16 == "n/a" || $16 + 0 > 100) ? " *" : ""
        printf "%5s  %-8s %8.2f %5.2f%% %7.2f %7.1f %7.1f %4s %4s %5s  %-24s %7s %5s %6s %8s%s\n",
            $1, $2, $3, $3 / 10, $19, $4 / 1024, $5 / 1024, $6, $7, $8,
            $9 " (" $10 "/" $11 "/" $12 ")", $13, $14, $15, $16, busy
    }' "$RESULTS"
cat <<'EOF'
  CPU = the whole process tree, exited children included; main = the main process alone (for
  netdata: without the cgroup-name.sh/cgroup-network scripts it runs per new container).
  thr/max = threads at the end of the window / most seen, summed over the process tree.
  docker req/min in the window: ping = /_ping; fleet = about the measured containers (inspect of a
  tbench container, list, stats): what a collector would repeat per interval; other = the events
  stream and inspects of containers other users of the engine create meanwhile (and the docker
  CLI's fallbacks for those). run req = all requests since the program started.
  seen = tbench containers the program showed (raw: every docker cgroup). ready = seconds until it
  showed them all. dockerd = dockerd+containerd CPU in the window (context; other users included).
  * = the engine was busy with other work (dockerd above 100 ms/s, or restarted) in that window:
  churn makes netdata run its naming scripts and every program inspect new containers; rerun.
EOF
echo

echo "Ratios and targets"
for n in $COUNTS; do
    awk -F'\t' -v n="$n" '
        $1 == n && $3 != "FAILED" { cpu[$2] = $3; rss[$2] = $4; thr[$2] = $6; fl[$2] = $11; ok[$2] = 1 }
        function verdict(c) { return c ? "PASS" : "FAIL" }
        END {
            printf "N=%s:\n", n
            if (ok["netdata"] && ok["raw"] && cpu["raw"] > 0)
                printf "  netdata/raw CPU    = %.2f\n", cpu["netdata"] / cpu["raw"]
            if (!ok["tether"]) { print "  tether not measured: tether ratios n/a"; exit }
            if (ok["netdata"] && cpu["netdata"] > 0)
                printf "  tether/netdata CPU = %.3f (target <= 0.3) %s\n", cpu["tether"] / cpu["netdata"], verdict(cpu["tether"] / cpu["netdata"] <= 0.3)
            if (ok["raw"] && cpu["raw"] > 0)
                printf "  tether/raw CPU     = %.2f (target <= 1.5) %s\n", cpu["tether"] / cpu["raw"], verdict(cpu["tether"] / cpu["raw"] <= 1.5)
            printf "  tether RSS         = %.1f MB%s\n", rss["tether"] / 1024, (n >= 500 ? sprintf(" (target <= 8 MB at 500) %s", verdict(rss["tether"] <= 8192)) : "")
            printf "  tether threads     = %d (target: 1 event-loop thread) %s\n", thr["tether"], verdict(thr["tether"] == 1)
            printf "  tether docker requests/min about the fleet, besides /_ping = %s (target 0) %s\n", fl["tether"], (fl["tether"] == "?" ? "n/a" : verdict(fl["tether"] + 0 == 0))
        }' "$RESULTS"
done
echo
echo "all figures: $RESULTS   logs: $OUT/<program>-from-n<N>/   container creation: $OUT/create.tsv"
