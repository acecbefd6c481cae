#!/usr/bin/env bash
# slurm-ci-down.sh: stop what slurm-ci-up.sh started, by pid file (never by process name).
# Idempotent: stopping a cluster that is down does nothing.
set -uo pipefail

alive() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] \
    && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}
stop() {
  if alive "$1" "$2"; then
    local pid; pid=$(cat "$1"); kill "$pid"
    for _ in $(seq 1 100); do alive "$1" "$2" || break; sleep 0.1; done
    alive "$1" "$2" && kill -9 "$pid"
  fi
  rm -f "$1"   # a stale /run/slurmctld.pid breaks `apt-get purge slurmctld`
}

# Jobs first: their slurmstepd processes outlive a stopped slurmd.
if alive /run/slurmctld.pid slurmctld; then
  scancel --state=pending 2>/dev/null
  scancel --state=running 2>/dev/null
  for _ in $(seq 1 50); do [ -z "$(squeue -h -t R,CG 2>/dev/null)" ] && break; sleep 0.2; done
fi
stop /run/slurmd.pid slurmd
stop /run/slurmctld.pid slurmctld
stop /run/slurmdbd.pid slurmdbd
stop /run/mysqld/mysqld.pid mariadbd
stop /run/munge/munged.pid munged
exit 0
