#!/usr/bin/env bash
# A throwaway one-node Ceph cluster (mon + osd + radosgw, cephx off) on
# 127.0.0.1, kept entirely under DIR: a real S3 engine for tests and benchmarks.
#
#   ceph-rgw.sh start DIR [--store memstore|bluestore] [--mem-bytes N] [--dns-name NAME]
#   ceph-rgw.sh stop DIR
#
# start prints the DRIVE_TEST_S3_* variables and writes them to DIR/env.
# --mem-bytes caps memstore (default 4 GiB); bluestore uses a sparse file in
# DIR and keeps RAM low. --dns-name sets rgw_dns_name so that
# Host: BUCKET.NAME:PORT is served virtual-host style. Each step is bounded by
# CEPH_RGW_TIMEOUT seconds (default 60); on failure the step's log is shown and
# whatever started is stopped. stop is idempotent and fine on a half-started DIR.
set -euo pipefail

STEP_TIMEOUT=${CEPH_RGW_TIMEOUT:-60} # seconds per step; never Ceph's own 300 s
# The first python3 on PATH may lack the rados module (pyenv).
PY=/usr/bin/python3
REGION=default # RGW's default zonegroup, the name SigV4 requests are scoped to

usage() {
  echo "usage: $0 start DIR [--store memstore|bluestore] [--mem-bytes N] [--dns-name NAME]" >&2
  echo "       $0 stop DIR" >&2
  exit 2
}

# Mon commands go through librados in one interpreter per call: the ceph CLI
# costs ~0.5 s of start-up each time.
read -r -d '' PY_HELPER <<'PY' || true
import json, secrets, socket, string, sys, time, uuid

def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports

cmd = sys.argv[1]
if cmd == "init":
    # mon port, rgw port, fsid, osd uuid, access key, secret key
    alnum = string.ascii_letters + string.digits
    print(*free_ports(2), uuid.uuid4(), uuid.uuid4(),
          "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(20)),
          "".join(secrets.choice(alnum) for _ in range(40)))
    sys.exit(0)

import rados
cluster = rados.Rados(conffile=sys.argv[2])
cluster.connect(timeout=30)

def mon(**kw):
    ret, out, err = cluster.mon_command(json.dumps(kw), b"")
    if ret != 0:
        sys.exit(f"mon command {kw['prefix']} failed ({ret}): {err}")
    return out

if cmd == "osd-new":
    print(mon(prefix="osd new", uuid=sys.argv[3]).decode().strip())
elif cmd == "pools":
    # Pre-created pools make RGW's first bucket take ~0.1 s, not ~4 s.
    while not any(o["up"] for o in json.loads(mon(prefix="osd dump", format="json"))["osds"]):
        time.sleep(0.05)
    for pool in [".rgw.root"] + ["default.rgw." + p for p in
                 ("control", "meta", "log", "buckets.index", "buckets.data", "buckets.non-ec")]:
        mon(prefix="osd pool create", pool=pool, pg_num=8, pgp_num=8)
        mon(prefix="osd pool application enable", pool=pool, app="rgw")
else:
    sys.exit(f"unknown helper command {cmd}")
PY

# Daemons are matched to DIR by the config path, an argument of their command
# line, so a recycled pid is never signalled.
ours() {
  grep -qsxzF -- "$CONF" "/proc/$1/cmdline"
}

# A detached daemon that died may linger as a zombie until it is reaped.
alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

stop_pid() {
  local pid=$1 i
  ours "$pid" && alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 20; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  echo "ceph-rgw: pid $pid survived SIGKILL" >&2
}

stop_named() {
  local pidfile=$DIR/run/$1.pid pid
  [[ -f $pidfile ]] || return 0
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] && stop_pid "$pid"
  rm -f "$pidfile"
}

do_stop() {
  local pid mon_pid=""
  [[ -f $CONF ]] || return 0
  [[ -f $DIR/run/mon.a.pid ]] && mon_pid=$(<"$DIR/run/mon.a.pid")
  stop_named client.rgw.a
  stop_named osd.0
  # Half-started: a daemon that never wrote its pid file, or a hung client.
  # The mon goes last; without it the others take the SIGKILL path.
  for pid in $(grep -lsxzF -- "$CONF" /proc/[0-9]*/cmdline | cut -d/ -f3); do
    [[ $pid != "$$" && $pid != "$mon_pid" ]] && stop_pid "$pid"
  done
  stop_named mon.a
  return 0
}

show_tail() {
  [[ -s $1 ]] || return 0
  echo "--- tail of $1" >&2
  tail -n 25 "$1" >&2
}

LOG=""
die() {
  echo "ceph-rgw: $*" >&2
  show_tail "$LOG"
  # Tools and daemons write their stderr here.
  [[ $LOG == "$DIR/log/steps.out" ]] || show_tail "$DIR/log/steps.out"
  do_stop
  exit 1
}

# Runs a step with a bounded time; $1 names the log to show on failure.
step() {
  local log=$1 what=$2
  shift 2
  LOG=$log
  local rc=0
  timeout --kill-after=5 "$STEP_TIMEOUT" "$@" </dev/null >>"$DIR/log/steps.out" 2>&1 || rc=$?
  ((rc != 124)) || die "$what timed out after ${STEP_TIMEOUT}s"
  ((rc == 0)) || die "$what failed (exit $rc)"
}

# Polls "$@" for up to STEP_TIMEOUT seconds.
wait_for() {
  local log=$1 what=$2 deadline=$((SECONDS + STEP_TIMEOUT))
  shift 2
  LOG=$log
  until "$@"; do
    ((SECONDS < deadline)) || die "timed out after ${STEP_TIMEOUT}s waiting for $what"
    sleep 0.05
  done
}

rgw_ok() {
  [[ $(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$RGW_PORT/") == 200 ]]
}

write_conf() {
  local store_conf
  if [[ $STORE == memstore ]]; then
    store_conf="osd_objectstore = memstore
memstore_device_bytes = $MEM_BYTES"
  else
    # Sparse, so the size is only a ceiling on what benchmarks can write.
    store_conf="osd_objectstore = bluestore
bluestore_block_path = $DIR/osd/block
bluestore_block_create = true
bluestore_block_size = $((64 << 30))"
  fi
  cat >"$CONF" <<EOF
[global]
fsid = $FSID
mon_host = [v2:127.0.0.1:$MON_PORT]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_msgr1 = false
ms_bind_ipv6 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
keyring = /dev/null
# auth none cannot do msgr2 secure mode; clients asking only for it hang 300 s.
ms_cluster_mode = crc secure
ms_service_mode = crc secure
ms_client_mode = crc secure
ms_mon_cluster_mode = crc secure
ms_mon_service_mode = crc secure
ms_mon_client_mode = crc secure
run_dir = $DIR/run
crash_dir = $DIR/crash
log_file = $DIR/log/\$name.log
log_to_stderr = false
mon_cluster_log_file = $DIR/log/cluster.log
client_mount_timeout = 30
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_max_pg_per_osd = 1000
mon_warn_on_pool_no_redundancy = false
# Otherwise every map change waits ~1 s.
paxos_propose_interval = 0.01
paxos_min_wait = 0.01
# Tests must not fail because the host disk is fuller than Ceph likes.
mon_data_avail_crit = 0
mon_data_avail_warn = 0

[mon]
mon_data = $DIR/mon/\$name
admin_socket = $DIR/run/\$name.asok
pid_file = $DIR/run/\$name.pid

[osd]
osd_data = $DIR/osd/\$name
admin_socket = $DIR/run/\$name.asok
pid_file = $DIR/run/\$name.pid
$store_conf

[client.rgw.a]
admin_socket = $DIR/run/\$name.asok
pid_file = $DIR/run/\$name.pid
rgw_data = $DIR/rgw
rgw_frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw_dynamic_resharding = false
rgw_enable_usage_log = false
# Reclaim deleted data within a minute, not hours: memstore holds it in RAM.
rgw_gc_obj_min_wait = 60
rgw_gc_processor_period = 60
# SSE-S3 over plain HTTP on loopback; by default RGW takes encryption headers only over TLS.
rgw_crypt_require_ssl = false
${DNS_NAME:+rgw_dns_name = $DNS_NAME}
EOF
}

do_start() {
  local bin
  # A test runner's PATH may be trimmed.
  PATH=$PATH:/usr/bin:/usr/sbin
  for bin in ceph-mon ceph-osd radosgw radosgw-admin monmaptool curl timeout; do
    command -v "$bin" >/dev/null ||
      { echo "ceph-rgw: $bin not found (apt-get install ceph-mon ceph-osd radosgw ceph-common curl)" >&2; exit 1; }
  done
  $PY -c 'import rados' 2>/dev/null ||
    { echo "ceph-rgw: $PY cannot import rados (apt-get install python3-rados)" >&2; exit 1; }
  if [[ -f $DIR/run/mon.a.pid || -f $DIR/env ]]; then
    echo "ceph-rgw: $DIR already holds a cluster; stop it and use a fresh DIR" >&2
    exit 1
  fi
  mkdir -p "$DIR"/{run,log,crash,mon,osd,rgw}
  # Admin sockets are unix sockets: sun_path holds 107 bytes.
  ((${#DIR} < 80)) || echo "ceph-rgw: warning: DIR is long; admin sockets may not bind" >&2

  read -r MON_PORT RGW_PORT FSID OSD_UUID ACCESS_KEY SECRET_KEY < <($PY -c "$PY_HELPER" init) ||
    die "$PY failed to pick ports and keys"
  write_conf

  step "$DIR/log/steps.out" "monmaptool" \
    monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap"
  step "$DIR/log/mon.a.log" "ceph-mon --mkfs" ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap"
  # Daemons detach once initialised; their stdio must not hold a caller's pipe.
  step "$DIR/log/mon.a.log" "ceph-mon start" ceph-mon -c "$CONF" -i a
  local osd_id
  LOG=$DIR/log/mon.a.log
  osd_id=$(timeout --kill-after=5 "$STEP_TIMEOUT" $PY -c "$PY_HELPER" osd-new "$CONF" "$OSD_UUID" \
    </dev/null 2>>"$DIR/log/steps.out") ||
    die "osd new failed or timed out after ${STEP_TIMEOUT}s"
  [[ $osd_id == 0 ]] || die "osd new gave id '$osd_id', expected 0"
  mkdir -p "$DIR/osd/osd.0"
  step "$DIR/log/osd.0.log" "ceph-osd --mkfs" ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID"
  step "$DIR/log/osd.0.log" "ceph-osd start" ceph-osd -c "$CONF" -i 0
  step "$DIR/log/osd.0.log" "osd up and rgw pools" $PY -c "$PY_HELPER" pools "$CONF"
  # Before radosgw starts, so the two do not race to create the default zone.
  step "$DIR/log/steps.out" "radosgw-admin user create" \
    radosgw-admin -c "$CONF" user create --uid=drive-test --display-name=drive-test \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY"
  step "$DIR/log/client.rgw.a.log" "radosgw start" radosgw -c "$CONF" -n client.rgw.a
  wait_for "$DIR/log/client.rgw.a.log" "radosgw on 127.0.0.1:$RGW_PORT" rgw_ok

  cat >"$DIR/env.tmp" <<EOF
DRIVE_TEST_S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
DRIVE_TEST_S3_ACCESS_KEY=$ACCESS_KEY
DRIVE_TEST_S3_SECRET_KEY=$SECRET_KEY
DRIVE_TEST_S3_REGION=$REGION
EOF
  mv "$DIR/env.tmp" "$DIR/env"
  cat "$DIR/env"
}

[[ $# -ge 2 ]] || usage
ACTION=$1
[[ $ACTION == start ]] && { mkdir -p -- "$2" || exit 1; }
DIR=$(realpath -m -- "$2")
CONF=$DIR/ceph.conf
shift 2

case $ACTION in
  start)
    STORE=memstore MEM_BYTES=$((4 << 30)) DNS_NAME=""
    while [[ $# -gt 0 ]]; do
      case $1 in
        --store) STORE=${2:-}; shift 2 || usage ;;
        --mem-bytes) MEM_BYTES=${2:-}; shift 2 || usage ;;
        --dns-name) DNS_NAME=${2:-}; shift 2 || usage ;;
        *) usage ;;
      esac
    done
    [[ $STORE == memstore || $STORE == bluestore ]] || usage
    [[ $MEM_BYTES =~ ^[0-9]+$ ]] || usage
    trap 'die "interrupted"' INT TERM
    do_start
    ;;
  stop)
    [[ $# -eq 0 ]] || usage
    do_stop
    ;;
  *) usage ;;
esac
