#!/usr/bin/env bash
# A one-host Ceph cluster with an S3 gateway, for the object-store tests and
# benchmarks: one monitor, one OSD on memstore (data in RAM), one RADOS
# Gateway on 127.0.0.1, a test user and a test bucket.
#
#   scripts/ceph-dev.sh start   # installs the Debian packages when missing, starts, writes the env file
#   scripts/ceph-dev.sh env     # prints `export CKPT_S3_ENDPOINT=... AWS_...` for eval
#   scripts/ceph-dev.sh stop    # kills the daemons by their pid files, removes the scratch folder
#   scripts/ceph-dev.sh status  # says whether the gateway answers
#
# Settings (environment):
#   CKPT_CEPH_DIR           scratch folder (default /tmp/ckpt-ceph)
#   CKPT_CEPH_PORT          gateway port on 127.0.0.1 (default: the first
#                           free port from 7480 on; when set, it must be free)
#   CKPT_CEPH_MON_PORT      monitor port on 127.0.0.1 (default: the first
#                           free port from 6789 on; when set, it must be free)
#   CKPT_CEPH_MEMSTORE_MIB  memstore capacity in MiB (default 4096; RAM is
#                           used only for what is stored, and deleted objects
#                           are garbage-collected within ~30 s)
#
# `start` is idempotent (a running cluster is left as it is; a dead one is
# cleaned up and started afresh) and fails with the daemon's log tail when a
# daemon does not come up. Needs root for apt-get when packages are missing.
#
# Another cluster may share this loopback (a second checkout's tests, another
# container on the same network): `start` never binds a port that already
# answers, and checks that the monitor it talks to is its own (same fsid).
# The ports it chose are kept in $DIR/ports for `env`, `status` and `stop`.
set -euo pipefail

DIR=${CKPT_CEPH_DIR:-/tmp/ckpt-ceph}
DEFAULT_PORT=7480
DEFAULT_MON_PORT=6789
PORT=${CKPT_CEPH_PORT:-$DEFAULT_PORT}
MON_PORT=${CKPT_CEPH_MON_PORT:-$DEFAULT_MON_PORT}
PORTS_FILE="$DIR/ports"
# A running cluster's ports win over the defaults.
# shellcheck disable=SC1090
[ -f "$PORTS_FILE" ] && . "$PORTS_FILE"
MEMSTORE_MIB=${CKPT_CEPH_MEMSTORE_MIB:-4096}
BUCKET=ckpt-test
REGION=us-east-1
# Test-only credentials for a throw-away gateway bound to loopback.
ACCESS_KEY=CKPTTESTACCESSKEY000
SECRET_KEY=ckpt-test-secret-key-for-the-local-gateway
# The gateway wants the payload hash header, which curl 7.88 does not add.
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
CONF="$DIR/ceph.conf"
ENV_FILE="$DIR/env"

log() { echo "ceph-dev: $*" >&2; }
die() { log "error: $*"; exit 1; }

# Prints the last lines of a daemon's log and fails.
fail_daemon() {
  local name=$1 what=$2
  log "error: $name $what; last lines of $DIR/log/$name.log:"
  tail -n 40 "$DIR/log/$name.log" >&2 2>/dev/null || log "(no log file)"
  exit 1
}

ceph_cmd() { ceph -c "$CONF" --connect-timeout 10 "$@"; }

install_packages() {
  local missing=()
  command -v ceph-mon >/dev/null 2>&1 || missing+=(ceph-mon)
  command -v ceph-osd >/dev/null 2>&1 || missing+=(ceph-osd)
  command -v radosgw >/dev/null 2>&1 || missing+=(radosgw)
  command -v ceph >/dev/null 2>&1 || missing+=(ceph-common)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  command -v uuidgen >/dev/null 2>&1 || missing+=(uuid-runtime)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} from Debian (about 2 minutes)"
  [ "$(id -u)" -eq 0 ] || die "installing ${missing[*]} needs root (apt-get)"
  # Quiet on success, the whole output on failure.
  local out
  if ! out=$( (apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "${missing[@]}") 2>&1); then
    echo "$out" | tail -n 40 >&2
    die "apt-get install ${missing[*]} failed"
  fi
}

# True when something accepts connections on 127.0.0.1:$1.
port_in_use() { (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Prints the port for $1: the one variable $2 sets, which must be free, or
# else the first free port from $3 on.
choose_port() {
  local what=$1 var=$2 port=${!2:-$3} last=$(($3 + 100))
  while port_in_use "$port"; do
    [ -z "${!var:-}" ] || die "$what port $port (from $var) is taken by another program"
    [ "$port" -lt "$last" ] || die "no free $what port in $3-$last"
    port=$((port + 1))
  done
  echo "$port"
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

gateway_up() {
  curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$PORT/" 2>/dev/null |
    grep -q '^200$'
}

write_conf() {
  local fsid=$1
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$MON_PORT
mon initial members = a
ms bind msgr2 = false
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
pid file = $DIR/run/\$name.pid
crash dir = $DIR/crash
# Small caches: this cluster holds test data only.
osd memory target = 536870912
mon memory target = 268435456

[mon]
mon data = $DIR/mon/\$cluster-\$id

[osd]
osd data = $DIR/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = $((MEMSTORE_MIB * 1024 * 1024))
osd max object size = 134217728

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$PORT
rgw dns name = 127.0.0.1
rgw data = $DIR/rgw
# Deleted objects' data (memstore RAM) is reclaimed within ~30 s, not hours.
rgw gc obj min wait = 0
rgw gc processor period = 15
rgw gc processor max time = 15
EOF
}

write_env() {
  cat >"$ENV_FILE" <<EOF
export CKPT_S3_ENDPOINT=http://127.0.0.1:$PORT CKPT_S3_BUCKET=$BUCKET AWS_ACCESS_KEY_ID=$ACCESS_KEY AWS_SECRET_ACCESS_KEY=$SECRET_KEY AWS_REGION=$REGION AWS_ENDPOINT_URL=http://127.0.0.1:$PORT
EOF
}

# Waits up to $2 seconds for command $3... to succeed; daemon $1 must stay alive.
wait_for() {
  local name=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    pid_alive "$DIR/run/$name.pid" || fail_daemon "$name" "exited while starting"
    [ $SECONDS -lt $deadline ] || fail_daemon "$name" "did not come up within ${seconds}s"
    sleep 0.5
  done
}

osd_up() { ceph_cmd osd dump 2>/dev/null | grep -q '^osd\.0 up'; }

s3_put_bucket() {
  curl -sS -f -m 30 -X PUT --aws-sigv4 "aws:amz:$REGION:s3" \
    --user "$ACCESS_KEY:$SECRET_KEY" "http://127.0.0.1:$PORT/$BUCKET" -o /dev/null \
    -H "x-amz-content-sha256: $EMPTY_SHA256"
}

rss_report() {
  local name pid
  for name in mon.a osd.0 client.rgw; do
    pid=$(cat "$DIR/run/$name.pid" 2>/dev/null) || continue
    awk -v n="$name" '/^VmRSS/ { printf "ceph-dev: %s RSS %d MiB\n", n, $2 / 1024 }' \
      "/proc/$pid/status" >&2
  done
}

cmd_start() {
  if pid_alive "$DIR/run/client.rgw.pid" && gateway_up && [ -f "$ENV_FILE" ]; then
    log "already running on 127.0.0.1:$PORT ($DIR)"
    return 0
  fi
  [ -e "$DIR" ] && { log "cleaning up a stopped or broken cluster in $DIR"; cmd_stop; }
  install_packages
  local t0=$SECONDS
  PORT=$(choose_port gateway CKPT_CEPH_PORT "$DEFAULT_PORT")
  MON_PORT=$(choose_port monitor CKPT_CEPH_MON_PORT "$DEFAULT_MON_PORT")
  mkdir -p "$DIR"/{run,log,crash,mon,osd/ceph-0,rgw}
  echo "PORT=$PORT MON_PORT=$MON_PORT" >"$PORTS_FILE"
  local fsid
  fsid=$(uuidgen)
  write_conf "$fsid"

  monmaptool --create --add a "v1:127.0.0.1:$MON_PORT" --fsid "$fsid" "$DIR/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" >"$DIR/log/mkfs.log" 2>&1 ||
    { cat "$DIR/log/mkfs.log" >&2; die "ceph-mon --mkfs failed"; }
  ceph-mon -c "$CONF" -i a 2>>"$DIR/log/mon.a.log" || fail_daemon mon.a "did not start"
  wait_for mon.a 30 ceph_cmd mon stat
  # A monitor of another cluster that took the port in the meantime would
  # refuse our OSD ("wrong fsid"); say so instead.
  local answering
  answering=$(ceph_cmd fsid 2>/dev/null) || answering="(no answer)"
  [ "$answering" = "$fsid" ] ||
    die "the monitor on 127.0.0.1:$MON_PORT is not ours (fsid $answering, ours $fsid)"

  # A monitor that answers `mon stat` may still refuse commands for a moment
  # (seen once: "EPERM: problem getting command descriptions from mon").
  local id="" try
  for try in 1 2 3 4 5 6 7 8 9 10; do
    id=$(ceph_cmd osd create 2>>"$DIR/log/osd-create.log") && break
    id=""
    sleep 1
  done
  [ -n "$id" ] || { cat "$DIR/log/osd-create.log" >&2; fail_daemon mon.a "refused \`ceph osd create\` 10 times"; }
  [ "$id" = 0 ] || die "ceph osd create gave id $id, expected 0"
  ceph-osd -c "$CONF" -i 0 --mkfs >>"$DIR/log/mkfs.log" 2>&1 ||
    { tail -n 40 "$DIR/log/mkfs.log" >&2; die "ceph-osd --mkfs failed"; }
  ceph-osd -c "$CONF" -i 0 2>>"$DIR/log/osd.0.log" || fail_daemon osd.0 "did not start"
  wait_for osd.0 60 osd_up

  radosgw -c "$CONF" -n client.rgw 2>>"$DIR/log/client.rgw.log" || fail_daemon client.rgw "did not start"
  wait_for client.rgw 90 gateway_up

  radosgw-admin -c "$CONF" user create --uid=ckpt-test --display-name="ckpt tests" \
    --access-key="$ACCESS_KEY" --secret="$SECRET_KEY" >"$DIR/log/user.log" 2>&1 ||
    { cat "$DIR/log/user.log" >&2; die "radosgw-admin user create failed"; }
  s3_put_bucket || fail_daemon client.rgw "refused to create bucket $BUCKET"
  write_env
  log "started in $((SECONDS - t0))s: gateway http://127.0.0.1:$PORT, bucket $BUCKET, env file $ENV_FILE"
  rss_report
}

cmd_stop() {
  local name pid
  for name in client.rgw osd.0 mon.a; do
    if pid_alive "$DIR/run/$name.pid"; then
      pid=$(cat "$DIR/run/$name.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && { log "$name ($pid) ignored SIGTERM; SIGKILL"; kill -9 "$pid" 2>/dev/null || true; }
    fi
  done
  # Refuse to remove anything but our own scratch folder.
  if [ -e "$DIR" ]; then
    [ -f "$CONF" ] || [ -d "$DIR/run" ] || die "$DIR does not look like a ceph-dev folder; not removing it"
    rm -rf "$DIR"
  fi
}

cmd_env() {
  [ -f "$ENV_FILE" ] || die "no env file at $ENV_FILE: run \`$0 start\` first"
  cat "$ENV_FILE"
}

cmd_status() {
  if pid_alive "$DIR/run/client.rgw.pid" && gateway_up; then
    log "running on 127.0.0.1:$PORT ($DIR)"
    rss_report
  else
    log "not running"
    return 1
  fi
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
env) cmd_env ;;
status) cmd_status ;;
*) echo "usage: $0 start|stop|env|status" >&2; exit 2 ;;
esac
