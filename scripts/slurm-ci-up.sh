#!/usr/bin/env bash
# slurm-ci-up.sh: a real one-node Slurm (Debian's slurm-wlm + munge) for the Slurm executor tests,
# started as plain daemons (CI machines have no systemd). Idempotent: running it again while the
# cluster is up changes nothing. Must run as root.
#   SLURM_WITH_DBD=1    also start MariaDB + slurmdbd so that `sacct` works (the executor does not need it;
#                       .ci/run sets it for test/slurm/accounting.test.ts)
#   SLURM_KEEP_STATE=1  keep the jobs slurmctld saved in an earlier life (default: cold start)
#   SLURM_MIN_JOB_AGE   seconds a finished job stays visible to `squeue -t all` (default 300)
# See ../shared/research/slurm-single-node.md for what was measured and why each setting is here.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "slurm-ci-up: must run as root" >&2; exit 1; }
WITH_DBD=${SLURM_WITH_DBD:-0}
export DEBIAN_FRONTEND=noninteractive
LOGS=(/var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log /var/log/slurm/slurmdbd.log
      /var/log/slurm/daemons.stderr /var/log/slurm-munged.stderr /var/log/mariadbd.log)

# Is the pid in PIDFILE a live (not zombie: PID 1 may reap slowly) process called COMM?
alive() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] \
    && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}
# Poll a command every 0.1 s for up to SECONDS.
wait_for() {
  local tries=$(( $1 * 10 )); shift
  for _ in $(seq 1 "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}
# Stop by pid file (never by name), then remove the pid file daemons running as `slurm` leave behind.
stop() {
  if alive "$1" "$2"; then
    local pid; pid=$(cat "$1"); kill "$pid"
    for _ in $(seq 1 100); do alive "$1" "$2" || break; sleep 0.1; done
    alive "$1" "$2" && kill -9 "$pid"
  fi
  rm -f "$1"
}
die() {
  echo "slurm-ci-up: $*" >&2
  for f in "${LOGS[@]}"; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }; done
  exit 1
}

# Packages, only when missing (postinst's attempts to start services are refused: harmless).
want="slurm-wlm munge"
[ "$WITH_DBD" = 1 ] && want="$want slurmdbd mariadb-server"
missing=""
for p in $want; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"; done
if [ -n "$missing" ]; then
  apt-get update -q
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing
fi

# slurmd names its node after `hostname -s`, which must resolve.
HOST=$(hostname -s)
getent hosts "$HOST" >/dev/null || echo "127.0.0.1 $HOST" >> /etc/hosts

# munge: nothing creates /run/munge without systemd, and munged refuses loose permissions.
install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
install -d -o munge -g munge -m 0711 /var/lib/munge
install -d -o munge -g munge -m 0755 /run/munge
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key
chmod 0600 /etc/munge/munge.key
if ! alive /run/munge/munged.pid munged; then
  runuser -u munge -- /usr/sbin/munged </dev/null >>/var/log/slurm-munged.stderr 2>&1 || die "munged did not start"
fi
wait_for 10 sh -c 'munge -n | unmunge' || die "munge does not answer"

# slurm.conf is generated from this machine each time (hostname, topology, memory).
install -d -o slurm -g slurm -m 0755 /var/spool/slurmctld /var/log/slurm
install -d -o root -g root -m 0755 /var/spool/slurmd /etc/slurm
MEM=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)  # above the real RAM drains the node
NODE=$(slurmd -C | head -n 1 | sed -E "s/RealMemory=[0-9]+/RealMemory=$MEM/")
if [ "$WITH_DBD" = 1 ]; then
  ACCOUNTING=$'AccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageHost=localhost'
else
  ACCOUNTING='AccountingStorageType=accounting_storage/none'
fi
CONF=$(cat <<EOF
# Written by scripts/slurm-ci-up.sh: one-node Slurm for the ca-pipe Slurm tests
ClusterName=ci
SlurmctldHost=$HOST
SlurmUser=slurm
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
MpiDefault=none
# No cgroups: runs in containers without a delegated cgroup tree.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# The default batch_sched_delay=3 adds about 3 s to every job.
SchedulerParameters=batch_sched_delay=0
ReturnToService=2
MinJobAge=${SLURM_MIN_JOB_AGE:-300}
$ACCOUNTING
JobCompType=jobcomp/none
$NODE State=UNKNOWN
# FORCE:4 lets four one-CPU test jobs share each core (tests submit bursts of tiny jobs).
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
)
CHANGED=0
if [ ! -f /etc/slurm/slurm.conf ] || [ "$(cat /etc/slurm/slurm.conf)" != "$CONF" ]; then
  printf '%s\n' "$CONF" > /etc/slurm/slurm.conf
  chmod 0644 /etc/slurm/slurm.conf
  CHANGED=1
fi

if [ "$WITH_DBD" = 1 ]; then
  install -d -o mysql -g mysql -m 0755 /run/mysqld
  alive /run/mysqld/mysqld.pid mariadbd || { setsid /usr/sbin/mariadbd --user=mysql </dev/null >>/var/log/mariadbd.log 2>&1 & }
  wait_for 60 mysqladmin ping || die "mariadb did not start"
  mysql -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
            CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm-ci';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
  DBD=$(cat <<'EOF'
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=slurm
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm-ci
StorageLoc=slurm_acct_db
EOF
)
  printf '%s\n' "$DBD" > /etc/slurm/slurmdbd.conf
  chown slurm:slurm /etc/slurm/slurmdbd.conf
  chmod 0600 /etc/slurm/slurmdbd.conf   # slurmdbd refuses a readable config
  if ! alive /run/slurmdbd.pid slurmdbd; then
    rm -f /run/slurmdbd.pid
    /usr/sbin/slurmdbd </dev/null >>/var/log/slurm/daemons.stderr 2>&1 || die "slurmdbd did not start"
  fi
  wait_for 60 sacctmgr -n -P list cluster || die "slurmdbd does not answer"
fi

# A new slurm.conf needs both daemons restarted.
if [ "$CHANGED" = 1 ]; then
  stop /run/slurmd.pid slurmd
  stop /run/slurmctld.pid slurmctld
fi
if ! alive /run/slurmctld.pid slurmctld; then
  rm -f /run/slurmctld.pid        # slurmctld runs as `slurm` and cannot replace a stale one in /run
  ARGS=-c                         # cold start: forget the jobs of an earlier, killed life
  [ "${SLURM_KEEP_STATE:-0}" = 1 ] && ARGS=""
  # shellcheck disable=SC2086
  /usr/sbin/slurmctld $ARGS </dev/null >>/var/log/slurm/daemons.stderr 2>&1 || die "slurmctld did not start"
fi
wait_for 30 sh -c 'scontrol ping | grep -q "is UP"' || die "slurmctld is not UP"
if ! alive /run/slurmd.pid slurmd; then
  rm -f /run/slurmd.pid
  /usr/sbin/slurmd </dev/null >>/var/log/slurm/daemons.stderr 2>&1 || die "slurmd did not start"
fi
node_ready() { sinfo -h -n "$HOST" -o %t | grep -qxE 'idle|mix|alloc'; }
if ! wait_for 30 node_ready; then
  scontrol update NodeName="$HOST" State=RESUME || true   # left DOWN or DRAINED by a crash
  wait_for 30 node_ready || die "node $HOST is not usable: $(sinfo -h -N -o '%N %t %E')"
fi
echo "slurm-ci-up: node $HOST ready ($(sinfo -h -o '%P %t' | tr '\n' ' '))"
