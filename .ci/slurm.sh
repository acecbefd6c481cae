#!/usr/bin/env bash
# CI helper for the Slurm executor tests (test/slurm/): `.ci/slurm.sh up` installs Debian's
# slurm-wlm + munge when absent and starts a one-node cluster (no systemd), `.ci/slurm.sh down`
# stops its daemons by pid. Both are idempotent. With the cluster up, `npm test` runs the Slurm
# tests; CA_PIPE_REQUIRE_SLURM=1 turns a missing sbatch into a failure instead of a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
case "${1:-}" in
  up) as_root bash scripts/slurm-ci-up.sh ;;
  down) as_root bash scripts/slurm-ci-down.sh ;;
  *) echo "usage: .ci/slurm.sh up|down" >&2; exit 2 ;;
esac
