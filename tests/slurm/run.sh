#!/usr/bin/env bash
# A real single-node Slurm cluster (Debian's slurm-wlm and munge), configured and started here,
# runs a sweep as a job array (`aedyn sweep --slurm`); the collected tables must equal a local
# run's. Where Slurm cannot be installed or does not start within a minute, the test says why
# and is skipped (exit 0). Needs root to install and to start the daemons (CI runs as root).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
aedyn=${AEDYN_BIN:-$root/target/debug/aedyn}
skip() { echo "slurm test skipped: $*"; exit 0; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || skip "slurm-wlm is not installed and this is not root with apt-get"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge) >/dev/null 2>&1 ||
        skip "apt-get could not install slurm-wlm and munge"
fi
[ "$(id -u)" = 0 ] || skip "starting slurmctld, slurmd and munged needs root"

work=$(mktemp -d /tmp/aedyn-slurm.XXXXXX)
host=$(hostname -s)
conf=/etc/slurm/slurm.conf
started=""
cleanup() {
    if [ -n "$started" ]; then
        scontrol shutdown >/dev/null 2>&1 || true
        pkill -x slurmd >/dev/null 2>&1 || true
        pkill -x munged >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

# munge: a key, its folders owned by its user, the daemon.
mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
[ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key
pgrep -x munged >/dev/null || runuser -u munge -- munged || skip "munged did not start"

# One node with every core, one partition; no cgroups (linuxproc tracking, no task plugin).
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
if [ -e "$conf" ] && ! grep -q "aedyn-test" "$conf"; then
    skip "$conf exists and is not this test's: not touching a configured cluster"
fi
cat >"$conf" <<CONF
# aedyn-test: a single-node cluster for tests/slurm/run.sh
ClusterName=aedyn
SlurmctldHost=$host
AuthType=auth/munge
SlurmUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
started=yes
pgrep -x slurmctld >/dev/null || slurmctld || skip "slurmctld did not start (see /var/log/slurm/slurmctld.log)"
pgrep -x slurmd >/dev/null || slurmd || skip "slurmd did not start (see /var/log/slurm/slurmd.log)"
for _ in $(seq 60); do
    sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)' && break
    sleep 1
done
sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)' || skip "the node was not up within a minute: $(sinfo -h 2>&1 | head -1)"

cat >"$work/grid.toml" <<'TOML'
title = "slurm test"
command = "compare"
[fixed]
d = 100
t-end = 2
points = 4
seeds = 2
[grid]
lr = [0.5, 1, 2]
k = [2, 3]
TOML
"$aedyn" sweep "$work/grid.toml" --out-dir "$work/slurm" --slurm 3 --sbatch "--time=00:10:00"
timeout 300 sbatch --wait "$work/slurm/sweep.sbatch" >/dev/null
"$aedyn" sweep "$work/grid.toml" --out-dir "$work/slurm" --collect --quiet
"$aedyn" sweep "$work/grid.toml" --out-dir "$work/local" --quiet
cmp "$work/slurm/trajectories.csv" "$work/local/trajectories.csv"
strip() { python3 -c 'import csv,sys; r=list(csv.reader(open(sys.argv[1]))); i=r[0].index("seconds"); print([x[:i]+x[i+1:] for x in r])' "$1"; }
[ "$(strip "$work/slurm/points.csv")" = "$(strip "$work/local/points.csv")" ] || { echo "slurm and local points.csv differ"; exit 1; }
echo "slurm test passed: 6 points in 3 array tasks equal the local sweep ($(ls "$work"/slurm/slurm-*.out | wc -l) task logs)"
rm -rf "$work"
