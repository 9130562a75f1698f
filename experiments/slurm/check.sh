#!/usr/bin/env bash
# A real Slurm test on this one machine: install slurm-wlm and munge from Debian's packages,
# start munged, slurmctld and slurmd (a one-node cluster), submit the quick suite as a 3-task
# array plus a merge job, wait, and check that the merged results hold exactly the runs of an
# unsharded run of the same suite, with identical reports for every simulator run.
# Needs root (apt-get, daemons). Stops the daemons it started; leaves its files under $WORK.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
WORK=${WORK:-$(mktemp -d /tmp/schedlab-slurm.XXXXXX)}
SUITE=${SUITE:-quick}
T0=$(date +%s)
say() { echo "== [$(( $(date +%s) - T0 ))s] $*"; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v jq >/dev/null; then
    say "installing slurm-wlm, munge and jq"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurm-wlm munge jq >/dev/null
fi
say "$(slurmctld -V), $(munged --version 2>&1 | head -1)"

say "building schedlab"
cargo build -q -p experiments
export SCHEDLAB="$ROOT/target/debug/schedlab"

say "starting munged"
if [ ! -s /etc/munge/munge.key ]; then mungekey --create --force; fi
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
mkdir -p /run/munge && chown munge:munge /run/munge
STARTED_MUNGE=
if ! munge -n >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
    STARTED_MUNGE=1
fi
munge -n | unmunge >/dev/null

say "starting a one-node cluster (slurmctld + slurmd) in $WORK"
HOST=$(hostname -s)
mkdir -p "$WORK/state" "$WORK/spool"
export SLURM_CONF="$WORK/slurm.conf"
cat > "$SLURM_CONF" <<CONF
ClusterName=schedlab
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmctldPort=16817
SlurmdPort=16818
NodeName=$HOST CPUs=$(nproc) State=UNKNOWN
PartitionName=check Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
stop() {
    for p in slurmd slurmctld; do
        if [ -s "$WORK/$p.pid" ]; then kill "$(cat "$WORK/$p.pid")" 2>/dev/null || true; fi
    done
    if [ -n "$STARTED_MUNGE" ] && [ -s /run/munge/munged.pid ]; then
        kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
    fi
}
trap stop EXIT
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 60); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE 'idle|mixed'; then break; fi
    sleep 1
done
sinfo

say "submitting $SUITE as a 3-task array and a merge job"
cd "$WORK"
merge=$("$ROOT/experiments/slurm/submit.sh" "$SUITE" 3 "$WORK/merged")
for _ in $(seq 600); do
    if [ -z "$(squeue -h)" ]; then break; fi
    sleep 1
done
squeue
for f in slurm-*.out; do echo "--- $f (last lines)"; tail -n 2 "$f"; done
test -s "$WORK/merged/runs.jsonl" || { echo "merge produced nothing"; cat "$WORK/slurmctld.log" | tail -20; exit 1; }

say "running $SUITE unsharded for comparison"
"$SCHEDLAB" suite "$SUITE" --out "$WORK/whole" --fresh 2> "$WORK/whole.log"
tail -n 1 "$WORK/whole.log"

say "comparing"
ids() { jq -c '[.matrix, .cell, .repetition, .seed, .command]' "$1/runs.jsonl" | sort; }
sim() { jq -cS 'select(.coords.engine == "sim") | [.matrix, .cell, .repetition, .report]' "$1/runs.jsonl" | sort; }
n_whole=$(ids "$WORK/whole" | wc -l)
n_merged=$(ids "$WORK/merged" | wc -l)
n_shards=$(cat "$WORK"/merged.shards/*/runs.jsonl | wc -l)
echo "runs: unsharded $n_whole, shards $n_shards ($(for k in 1 2 3; do wc -l < "$WORK/merged.shards/$k/runs.jsonl"; done | paste -sd+)), merged $n_merged"
if diff <(ids "$WORK/whole") <(ids "$WORK/merged"); then
    echo "same runs (matrix, cell, repetition, seed, command): yes"
else
    echo "same runs: NO"; exit 1
fi
if diff <(sim "$WORK/whole") <(sim "$WORK/merged") >/dev/null; then
    echo "identical sim reports: yes ($(sim "$WORK/merged" | wc -l) runs)"
else
    echo "identical sim reports: NO"; exit 1
fi
test "$n_whole" = "$n_merged" && test "$n_shards" = "$n_whole"
say "slurm check passed"
