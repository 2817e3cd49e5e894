#!/usr/bin/env bash
# Runs deploy/slurm/zonesweep.sbatch for real on a single-node Slurm on this
# machine: installs Slurm and munge from Debian's packages if missing (root
# needed), starts munged, slurmctld and slurmd, and then
#   1. submits the sbatch script, cancels the job once the sweep has
#      progress (the allocation ending under the workers) and checks that a
#      second job with the same state folder continues the same sweep from
#      the database; with `scontrol requeue` when it brings the job back
#      within the wait, else with a second sbatch;
#   2. checks the job completed (JobState=COMPLETED, ExitCode=0:0), its log
#      holds progress lines, and the exports are byte-identical to
#      `zonesweep run` of the same sweep;
# and stops what it started. When Slurm cannot be installed or started it
# says why and exits 0 (skipped).
#
#   deploy/test-slurm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SAMPLES=${SLURM_TEST_SAMPLES:-100000}
SEED=${SLURM_TEST_SEED:-3}
JOB_SIZE=100
THREADS=2

START_NS=$(date +%s%N)
elapsed() { awk -v now="$(date +%s%N)" -v start="$START_NS" 'BEGIN { printf "%.1f", (now - start) / 1e9 }'; }
log() { printf '[slurm %6s s] %s\n' "$(elapsed)" "$*"; }
fail() { echo "test-slurm: $*" >&2; exit 1; }
skip() { echo "test-slurm: SKIPPED: $*" >&2; exit 0; }

STARTED_MUNGE=no
STARTED_SLURM=no
WORK=
JOBS=()
cleanup() {
  local status=$?
  set +e
  for job in "${JOBS[@]}"; do scancel "$job" 2>/dev/null; done
  if [ $status -ne 0 ] && [ -n "$WORK" ]; then
    echo "test-slurm FAILED; the last job log lines:" >&2
    tail -n 30 "$WORK"/zonesweep-*.log >&2 2>/dev/null
    tail -n 10 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 2>/dev/null
  fi
  if [ "$STARTED_SLURM" = yes ]; then stop_slurm; fi
  if [ "$STARTED_MUNGE" = yes ] && [ -s /run/munge/munged.pid ]; then kill "$(cat /run/munge/munged.pid)" 2>/dev/null; fi
  [ -z "$WORK" ] || rm -rf "$WORK"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop_slurm() {
  scontrol shutdown >/dev/null 2>&1
  for _ in $(seq 1 50); do
    pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null || break
    sleep 0.2
  done
  rm -f /run/slurmctld.pid /run/slurmd.pid
}

# ------------------------------------------------------------ install
if ! command -v sbatch >/dev/null || [ ! -x /usr/sbin/munged ]; then
  [ "$(id -u)" = 0 ] || skip "Slurm is not installed and this is not root (cannot apt-get install slurm-wlm munge)"
  command -v apt-get >/dev/null || skip "Slurm is not installed and there is no apt-get"
  log "installing slurm-wlm and munge from Debian's packages"
  # Daemons are started by hand below; "policy-rc.d denied execution of
  # start" lines from the packages' scripts are harmless.
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge; } \
    >/tmp/zonesweep-slurm-install.log 2>&1 ||
    skip "apt-get install slurm-wlm munge failed: $(tail -n 3 /tmp/zonesweep-slurm-install.log)"
fi

# ------------------------------------------------------------ munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || skip "munged does not answer and this is not root (cannot start it)"
  log "starting munged"
  if [ ! -s /etc/munge/munge.key ]; then mungekey --create >/dev/null 2>&1 || skip "mungekey --create failed"; fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
  runuser -u munge -- /usr/sbin/munged || skip "munged does not start"
  STARTED_MUNGE=yes
  for _ in $(seq 1 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  munge -n | unmunge >/dev/null 2>&1 || skip "munge -n | unmunge fails after starting munged"
fi

# ------------------------------------------------------------ slurm
if [ "$(sinfo -h -o %t 2>/dev/null | head -n 1)" != idle ]; then
  [ "$(id -u)" = 0 ] || skip "no idle Slurm node and this is not root (cannot configure and start Slurm)"
  log "configuring and starting slurmctld and slurmd (single node)"
  NODE_LINE=$(slurmd -C | head -n 1)
  [ -n "$NODE_LINE" ] || skip "slurmd -C names no node"
  HOST=$(hostname -s)
  install -d -o slurm -g slurm -m 0755 /var/spool/slurmctld /var/log/slurm
  install -d -m 0755 /var/spool/slurmd
  if [ -e /etc/slurm/slurm.conf ] && ! grep -q 'written by zonesweep deploy/test-slurm.sh' /etc/slurm/slurm.conf; then
    cp /etc/slurm/slurm.conf "/etc/slurm/slurm.conf.before-zonesweep.$(date +%s)"
  fi
  cat >/etc/slurm/slurm.conf <<CONF
# A single-node Slurm for tests, written by zonesweep deploy/test-slurm.sh.
ClusterName=zonesweep-test
SlurmctldHost=$HOST
AuthType=auth/munge
CryptoType=crypto/munge
SlurmUser=slurm
SlurmdUser=root
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
$NODE_LINE State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  rm -f /run/slurmctld.pid /run/slurmd.pid
  /usr/sbin/slurmctld || skip "slurmctld does not start: $(tail -n 3 /var/log/slurm/slurmctld.log 2>/dev/null)"
  STARTED_SLURM=yes
  /usr/sbin/slurmd || skip "slurmd does not start: $(tail -n 3 /var/log/slurm/slurmd.log 2>/dev/null)"
  state=
  for _ in $(seq 1 60); do
    state=$(sinfo -h -o %t 2>/dev/null | head -n 1)
    [ "$state" = idle ] && break
    sleep 1
  done
  [ "$state" = idle ] || skip "the Slurm node is not idle after 60 s (sinfo says '$state')"
fi
log "Slurm is up: $(sinfo -h -o '%P %D node(s) %c CPUs %t' | head -n 1)"

# ------------------------------------------------------------ the binary, the reference
cargo build --release --locked --bin zonesweep
TARGET=${CARGO_TARGET_DIR:-target}
case "$TARGET" in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
BIN=$TARGET/release/zonesweep
WORK=$(mktemp -d /tmp/zonesweep-slurm.XXXXXX)
chmod 0755 "$WORK"
log "reference: zonesweep run of $SAMPLES samples, seed $SEED, jobs of $JOB_SIZE"
"$BIN" run --db "$WORK/reference.redb" --samples "$SAMPLES" --seed "$SEED" --job-size "$JOB_SIZE" \
  >"$WORK/reference.out" 2>&1 || fail "the reference run failed: $(tail -n 5 "$WORK/reference.out")"
REFERENCE=$(tail -n 1 "$WORK/reference.out")
for format in json csv; do
  "$BIN" export "$REFERENCE" --db "$WORK/reference.redb" --format $format --out "$WORK/reference.$format" 2>/dev/null
done

export ZONESWEEP_BIN=$BIN ZONESWEEP_DIR=$WORK/state ZONESWEEP_SAMPLES=$SAMPLES ZONESWEEP_SEED=$SEED \
  ZONESWEEP_JOB_SIZE=$JOB_SIZE ZONESWEEP_THREADS=$THREADS ZONESWEEP_IDLE=5 ZONESWEEP_PROGRESS=2 \
  ZONESWEEP_COORDINATOR_ARGS="--lease-timeout 5 --heartbeat 1"

in_queue() { [ -n "$(squeue -h -j "$1" 2>/dev/null)" ]; }
job_field() { scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }
samples_done() { # from the job's last progress line
  grep -h -o -E '^sweep [^:]+: [a-z]+ [0-9]+/' "$WORK"/zonesweep-*.log 2>/dev/null | tail -n 1 | awk '{split($4, a, "/"); print a[1]}'
}
submit() {
  local job
  job=$(cd "$WORK" && sbatch --parsable --nodes=1 --cpus-per-task=$THREADS --output="$WORK/zonesweep-%j.log" \
    "$ROOT/deploy/slurm/zonesweep.sbatch") || fail "sbatch failed"
  job=${job%%;*}
  JOBS+=("$job")
  echo "$job"
}

# ------------------------------------------------------------ 1. interrupted
JOB1=$(submit)
log "sbatch: job $JOB1 ($SAMPLES samples, seed $SEED, jobs of $JOB_SIZE, $THREADS worker threads)"
deadline=$(($(date +%s) + 180))
until [ "$(samples_done || true)" -gt 0 ] 2>/dev/null; do
  in_queue "$JOB1" || fail "job $JOB1 left the queue before any progress line"
  [ "$(date +%s)" -lt "$deadline" ] || fail "no progress line in the log of job $JOB1 within 180 s"
  sleep 1
done
SWEEP=$(cat "$WORK/state/sweep-id")
at=$(samples_done)
[ "$at" -lt "$SAMPLES" ] || fail "the sweep ended before the job could be interrupted; raise SLURM_TEST_SAMPLES"
log "sweep $SWEEP at $at samples: scontrol requeue $JOB1 (the allocation ends under the workers)"
scontrol requeue "$JOB1" || fail "scontrol requeue $JOB1 failed"
# Slurm holds a requeued job back for two minutes (Reason=BeginTime); let it
# start again as soon as its resources are free.
for _ in $(seq 1 30); do
  [ "$(job_field "$JOB1" JobState)" = PENDING ] && break
  sleep 1
done
scontrol update JobId="$JOB1" StartTime=now || true
# A requeued job goes back to the queue and starts again (the same job id,
# SLURM_RESTART_COUNT=1) when Slurm lets it; if that is not within 90 s,
# cancel it and continue with a second job on the same state folder.
restarted=no
deadline=$(($(date +%s) + 90))
while [ "$(date +%s)" -lt "$deadline" ]; do
  if [ "$(job_field "$JOB1" Restarts)" -ge 1 ] 2>/dev/null && [ "$(job_field "$JOB1" JobState)" = RUNNING ]; then
    restarted=yes
    break
  fi
  sleep 1
done
if [ $restarted = yes ]; then
  JOB2=$JOB1
  log "job $JOB1 requeued and running again (Restarts=1)"
else
  log "job $JOB1 did not run again within 90 s of the requeue ($(job_field "$JOB1" JobState), $(job_field "$JOB1" Reason)): cancelling it and submitting a second job on the same state folder"
  scancel "$JOB1"
  for _ in $(seq 1 60); do in_queue "$JOB1" || break; sleep 1; done
  JOB2=$(submit)
  log "sbatch: job $JOB2"
fi

# ------------------------------------------------------------ 2. to the end
deadline=$(($(date +%s) + 600))
while in_queue "$JOB2"; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "job $JOB2 still queued or running after 600 s"
  sleep 2
done
STATE=$(job_field "$JOB2" JobState)
EXIT=$(job_field "$JOB2" ExitCode)
[ "$STATE" = COMPLETED ] && [ "$EXIT" = 0:0 ] || fail "job $JOB2 ended JobState=$STATE ExitCode=$EXIT"
log "job $JOB2: JobState=$STATE ExitCode=$EXIT"

LOGS=$(ls "$WORK"/zonesweep-*.log)
log "what the sbatch script said, over both starts:"
grep -h '^\[zonesweep ' $LOGS | sed 's/^/  /'
grep -h -E "continuing sweep $SWEEP|resumed sweep $SWEEP" $LOGS >/dev/null ||
  fail "the second start did not continue sweep $SWEEP (no 'continuing sweep' line in the job log)"
[ "$(cat "$WORK/state/sweep-id")" = "$SWEEP" ] || fail "the state folder names another sweep than $SWEEP"
PROGRESS_LINES=$(grep -h -c -E "^sweep $SWEEP: [a-z]+ [0-9]+/$SAMPLES samples" $LOGS | awk '{ n += $1 } END { print n + 0 }')
[ "$PROGRESS_LINES" -ge 2 ] || fail "the job logs hold $PROGRESS_LINES progress lines of sweep $SWEEP"
grep -h -E "^sweep $SWEEP: done $SAMPLES/$SAMPLES" $LOGS >/dev/null || fail "no final progress line (done $SAMPLES/$SAMPLES) in the job log"
log "job logs: $PROGRESS_LINES progress lines, e.g. $(grep -h -E "^sweep $SWEEP: running" $LOGS | tail -n 1)"

for format in json csv; do
  [ -s "$WORK/state/$SWEEP.$format" ] || fail "the job wrote no $WORK/state/$SWEEP.$format"
  cmp -s "$WORK/reference.$format" "$WORK/state/$SWEEP.$format" ||
    fail "the $format export differs from the reference run's ($(cmp "$WORK/reference.$format" "$WORK/state/$SWEEP.$format" | head -n 1))"
done
log "the JSON and CSV exports are byte-identical to \`zonesweep run\`"
WORKER_LINE=$(grep -h -i "worker" $LOGS | grep -i -E "idle|stopp|exit" | tail -n 1 || true)

echo
echo "slurm test passed: exports byte-identical to \`zonesweep run\` (JSON and CSV)"
printf '  %-32s %s\n' \
  "samples" "$SAMPLES in jobs of $JOB_SIZE, 1 node, 1 worker of $THREADS threads" \
  "interrupted at" "$at samples (scontrol requeue of job $JOB1)" \
  "continued by" "$([ $restarted = yes ] && echo "the requeued job $JOB2" || echo "a second job $JOB2 on the same state folder")" \
  "final job" "JobState=$STATE ExitCode=$EXIT" \
  "progress lines in the job logs" "$PROGRESS_LINES" \
  "worker's last line" "${WORKER_LINE:-none}" \
  "total wall time" "$(elapsed) s"
