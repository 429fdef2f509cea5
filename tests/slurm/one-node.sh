#!/usr/bin/env bash
# Starts a one-node Slurm cluster on this machine for the tests (`cargo xtask test` runs it):
# munged, slurmctld and slurmd on 127.0.0.1, every CPU of the machine in one partition, no
# accounting daemon (job states come from squeue). Needs root and Debian's slurm-wlm and
# munge packages. Idempotent: a cluster already up with this configuration is left as it is.
# usage: one-node.sh [DIR]   (default /tmp/hw2-slurm; prints SLURM_CONF=DIR/slurm.conf)
set -euo pipefail
base=${1:-/tmp/hw2-slurm}
conf=$base/slurm.conf
export SLURM_CONF=$conf
if [ -f "$conf" ] && timeout 10 sinfo -h -o %T 2>/dev/null | grep -Eq 'idle|mix|alloc'; then
  echo "SLURM_CONF=$conf"; exit 0
fi
mkdir -p "$base"/{state,spool,log,run}
# munge: the key Debian's package made, or a new one; the daemon runs as its own user.
mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
chown -R munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
chmod 0700 /etc/munge && chmod 0400 /etc/munge/munge.key
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
host=$(hostname -s)
cpus=$(nproc)
mem=$(awk '/MemTotal/ {print int($2 / 1024) - 1024}' /proc/meminfo)
cat > "$conf" <<CONF
ClusterName=hw2
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$base/state
SlurmdSpoolDir=$base/spool
SlurmctldPidFile=$base/run/slurmctld.pid
SlurmdPidFile=$base/run/slurmd.pid
SlurmctldLogFile=$base/log/slurmctld.log
SlurmdLogFile=$base/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
KillWait=10
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
pkill -x slurmctld 2>/dev/null || true
pkill -x slurmd 2>/dev/null || true
sleep 1
slurmctld -f "$conf"
slurmd -f "$conf"
for _ in $(seq 60); do
  if sinfo -h -o %T 2>/dev/null | grep -Eq 'idle|mix|alloc'; then
    echo "SLURM_CONF=$conf"; exit 0
  fi
  sleep 1
done
echo "error: the one-node Slurm cluster did not come up; its logs:" >&2
tail -n 20 "$base"/log/*.log >&2
exit 1
