#!/usr/bin/env bash
# Runs deploy/compose/compose.yaml for real: builds the image (FROM
# scratch), generates tokens and TLS files, starts a coordinator and three
# one-thread workers, submits a sweep with the submit token, and during it
# kills a worker (docker kill), cuts another off the network for longer than
# a lease and connects it again, and restarts the coordinator container.
# Then it checks that
#   - the JSON and CSV exports are byte-identical to `zonesweep run` of the
#     same sweep on this machine;
#   - a read token cannot submit (PERMISSION_DENIED);
#   - the workers not killed exit 0 by themselves (--exit-when-idle).
# Every wait is bounded; every container, network, volume and image it made
# is removed at the end, also on failure.
#
#   deploy/test-compose.sh               # a few minutes on 2 cores
#   COMPOSE_SAMPLES=400000 deploy/test-compose.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SAMPLES=${COMPOSE_SAMPLES:-200000}
SEED=${COMPOSE_SEED:-7}
JOB_SIZE=100
LEASE_TIMEOUT=3     # seconds; the network cut below lasts longer
HEARTBEAT=0.5
CUT_SECONDS=8
EXIT_WHEN_IDLE=15

RUN_ID="$(date +%s)-$$"
PROJECT="zonesweep-test-$RUN_ID"
TAG="zonesweep:test-$RUN_ID"
WORK=$(mktemp -d /tmp/zonesweep-compose.XXXXXX)
COMPOSE_FILE=deploy/compose/compose.yaml
IMAGE_BUILT=no
UP=no

START_NS=$(date +%s%N)
elapsed() { awk -v now="$(date +%s%N)" -v start="$START_NS" 'BEGIN { printf "%.1f", (now - start) / 1e9 }'; }
log() { printf '[compose %6s s] %s\n' "$(elapsed)" "$*"; }
fail() { echo "test-compose: $*" >&2; exit 1; }

if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null; then
  COMPOSE=(docker-compose)
else
  fail "neither \`docker compose\` nor \`docker-compose\` is installed"
fi
docker info >/dev/null 2>&1 || fail "no Docker engine answers (docker info fails)"
compose() { "${COMPOSE[@]}" -p "$PROJECT" -f "$COMPOSE_FILE" "$@"; }

cleanup() {
  local status=$?
  set +e
  if [ "$UP" = yes ]; then
    if [ $status -ne 0 ]; then
      echo "test-compose FAILED; the containers' last lines:" >&2
      compose logs --no-color --tail 25 >&2 2>&1
    fi
    compose --profile tools down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1 ||
      compose down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1
  fi
  if [ "$IMAGE_BUILT" = yes ]; then docker image rm -f "$TAG" >/dev/null 2>&1; fi
  left=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")
  [ -z "$left" ] || docker rm -f $left >/dev/null 2>&1
  docker network rm "${PROJECT}_cluster" >/dev/null 2>&1
  docker volume rm "${PROJECT}_data" >/dev/null 2>&1
  rm -rf "$WORK"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------ the image
log "building the image $TAG (deploy/build-image.sh)"
IMAGE_BUILT=yes
deploy/build-image.sh "$TAG" | sed 's/^/  /'
BIN=${CARGO_TARGET_DIR:-target}/release/zonesweep

# ------------------------------------------------------------ the reference
log "reference: zonesweep run of $SAMPLES samples, seed $SEED, jobs of $JOB_SIZE, on the host"
"$BIN" run --db "$WORK/reference.redb" --samples "$SAMPLES" --seed "$SEED" --job-size "$JOB_SIZE" \
  >"$WORK/reference.out" 2>&1 || fail "the reference run failed: $(tail -n 5 "$WORK/reference.out")"
REFERENCE=$(tail -n 1 "$WORK/reference.out")
for format in json csv; do
  "$BIN" export "$REFERENCE" --db "$WORK/reference.redb" --format $format --out "$WORK/reference.$format" 2>/dev/null
done

# ------------------------------------------------------------ secrets, cluster
log "deploy/compose/setup.sh: tokens for the roles worker, submit, read; TLS for the host coordinator"
ZONESWEEP_BIN=$BIN deploy/compose/setup.sh "$WORK/secrets" 2>&1 | sed 's/^/  /'
mkdir -p "$WORK/out"
chmod 0777 "$WORK/out"
export ZONESWEEP_IMAGE=$TAG ZONESWEEP_SECRETS=$WORK/secrets ZONESWEEP_OUT=$WORK/out \
  ZONESWEEP_LEASE_TIMEOUT=$LEASE_TIMEOUT ZONESWEEP_HEARTBEAT=$HEARTBEAT ZONESWEEP_EXIT_WHEN_IDLE=$EXIT_WHEN_IDLE

log "${COMPOSE[*]} up: coordinator (lease timeout $LEASE_TIMEOUT s) and three workers (--threads 1, --exit-when-idle $EXIT_WHEN_IDLE)"
UP=yes
timeout 180 "${COMPOSE[@]}" -p "$PROJECT" -f "$COMPOSE_FILE" up -d --quiet-pull 2>&1 | sed 's/^/  /' ||
  fail "the cluster did not come up within 180 s"
container() { compose ps -q "$1"; }
COORDINATOR=$(container coordinator)
W1=$(container worker1) W2=$(container worker2) W3=$(container worker3)
[ -n "$COORDINATOR" ] && [ -n "$W1" ] && [ -n "$W2" ] && [ -n "$W3" ] || fail "a container of the cluster is missing: $(compose ps)"
NETWORK="${PROJECT}_cluster"

# A one-off client container on the cluster's network; ROLE picks the token.
client() {
  local role=$1
  shift
  timeout 150 "${COMPOSE[@]}" -p "$PROJECT" -f "$COMPOSE_FILE" run --rm -T --no-deps client "$@" \
    --coordinator https://coordinator:7070 --ca /secrets/ca.pem --token-file "/secrets/$role.token"
}
samples_done() { client read status "$1" 2>/dev/null | head -n 1 | awk '{split($3, a, "/"); print a[1]}'; }
sweep_state() { client read status "$1" 2>/dev/null | head -n 1 | awk '{print $2}'; }

# ------------------------------------------------------------ roles
log "a read token may not submit"
if denied=$(client read submit --samples 100 --connect-timeout 20 2>&1); then
  fail "a submission with the read token was accepted: $denied"
fi
# The gRPC code PERMISSION_DENIED, as the client names it.
echo "$denied" | grep -q -E 'PERMISSION_DENIED|PermissionDenied' ||
  fail "a submission with the read token failed, but not with PERMISSION_DENIED: $denied"
DENIED_LINE=$(echo "$denied" | grep -E 'PERMISSION_DENIED|PermissionDenied' | head -n 1)
echo "  $DENIED_LINE"

# ------------------------------------------------------------ the sweep
SWEEP=$(client submit submit --samples "$SAMPLES" --seed "$SEED" --job-size "$JOB_SIZE" 2>"$WORK/submit.err" | tail -n 1) ||
  fail "the submission failed: $(cat "$WORK/submit.err")"
[ -n "$SWEEP" ] || fail "the submission printed no sweep id: $(cat "$WORK/submit.err")"
SUBMITTED_AT=$(elapsed)
log "submitted sweep $SWEEP with the submit token: $SAMPLES samples in jobs of $JOB_SIZE"

wait_samples() { # wait until at least $1 samples are done, at most $2 s
  local deadline=$(($(date +%s) + $2)) now
  while [ "$(date +%s)" -lt "$deadline" ]; do
    now=$(samples_done "$SWEEP" || true)
    if [ "${now:-0}" -ge "$1" ]; then echo "$now"; return 0; fi
    sleep 1
  done
  fail "fewer than $1 samples done within $2 s"
}

at=$(wait_samples $((SAMPLES / 20)) 120)
docker kill "$W1" >/dev/null
log "docker kill worker1 at $at samples done"

at=$(samples_done "$SWEEP")
docker network disconnect "$NETWORK" "$W2"
log "worker2 cut off the network at $at samples done, for $CUT_SECONDS s (lease timeout $LEASE_TIMEOUT s)"
sleep "$CUT_SECONDS"
docker network connect "$NETWORK" "$W2"
at=$(samples_done "$SWEEP")
log "worker2 connected again at $at samples done"

at=$(samples_done "$SWEEP")
[ "$at" -lt "$SAMPLES" ] || fail "the sweep ended before the coordinator restart; raise COMPOSE_SAMPLES"
restart_ns=$(date +%s%N)
timeout 120 docker restart --time 60 "$COORDINATOR" >/dev/null || fail "docker restart of the coordinator took over 120 s"
RESTART_S=$(awk -v now="$(date +%s%N)" -v start="$restart_ns" 'BEGIN { printf "%.1f", (now - start) / 1e9 }')
# "coordinator stopped" is logged after a clean stop on SIGTERM (not
# a kill at the end of the grace period).
CLEAN_STOPS=$(docker logs "$COORDINATOR" 2>&1 | grep -c 'coordinator stopped' || true)
[ "$CLEAN_STOPS" -ge 1 ] || fail "the coordinator did not stop cleanly on SIGTERM within 60 s: $(docker logs --tail 5 "$COORDINATOR" 2>&1)"
log "coordinator container restarted at $at samples done (docker restart took $RESTART_S s; it stopped cleanly on SIGTERM)"
after=$(samples_done "$SWEEP")
[ "${after:-0}" -lt "$SAMPLES" ] || fail "the sweep ended during the coordinator restart; raise COMPOSE_SAMPLES"
log "after the restart the coordinator reports $after samples done (kept on its volume)"

log "watch $SWEEP with the read token until it is final"
timeout 600 "${COMPOSE[@]}" -p "$PROJECT" -f "$COMPOSE_FILE" run --rm -T --no-deps client \
  watch "$SWEEP" --progress-interval 5 \
  --coordinator https://coordinator:7070 --ca /secrets/ca.pem --token-file /secrets/read.token 2>&1 |
  grep -v -E '^(Creating|Starting) ' | sed 's/^/  /' || true
state=$(sweep_state "$SWEEP")
SWEEP_WALL=$(awk -v a="$(elapsed)" -v b="$SUBMITTED_AT" 'BEGIN { printf "%.1f", a - b }')
[ "$state" = "done" ] || fail "sweep $SWEEP ended '$state': $(client read status "$SWEEP" 2>&1)"
log "sweep $SWEEP done, $SWEEP_WALL s after its submission"

# ------------------------------------------------------------ the checks
for format in json csv; do
  client read export "$SWEEP" --format $format --out "/out/cluster.$format" >/dev/null 2>"$WORK/export.err" ||
    fail "export as $format failed: $(cat "$WORK/export.err")"
  cmp -s "$WORK/reference.$format" "$WORK/out/cluster.$format" ||
    fail "the $format export differs from the reference run's ($(cmp "$WORK/reference.$format" "$WORK/out/cluster.$format" | head -n 1))"
done
log "the JSON and CSV exports are byte-identical to \`zonesweep run\` on the host"

log "waiting (at most $((EXIT_WHEN_IDLE + 90)) s) for worker2 and worker3 to exit by themselves"
deadline=$(($(date +%s) + EXIT_WHEN_IDLE + 90))
for w in "$W2" "$W3"; do
  while [ "$(docker inspect -f '{{.State.Running}}' "$w")" = true ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "worker $w still runs $((EXIT_WHEN_IDLE + 90)) s after the sweep: $(docker logs --tail 5 "$w" 2>&1)"
    sleep 1
  done
done
codes=""
for name in worker1 worker2 worker3; do
  id=$(container $name)
  codes="$codes $name=$(docker inspect -f '{{.State.ExitCode}}' "$id")"
done
for name in worker2 worker3; do
  code=$(docker inspect -f '{{.State.ExitCode}}' "$(container $name)")
  [ "$code" = 0 ] || fail "$name exited $code, not 0: $(docker logs --tail 5 "$(container $name)" 2>&1)"
done
log "worker exit codes:$codes (worker1 was killed)"
W2_LOG=$(docker logs "$W2" 2>&1 | grep -c -i -E 'lost|unreachable|back|again' || true)

SIZE=$(docker image inspect "$TAG" --format '{{.Size}}')
echo
echo "compose test passed: exports byte-identical to \`zonesweep run\` (JSON and CSV)"
printf '  %-36s %s\n' \
  "samples" "$SAMPLES in jobs of $JOB_SIZE, 3 workers of 1 thread" \
  "faults" "worker1 killed, worker2 cut off ${CUT_SECONDS} s (lease ${LEASE_TIMEOUT} s), coordinator restarted" \
  "coordinator restart (docker restart)" "$RESTART_S s, stopped cleanly on SIGTERM" \
  "sweep wall time (submit to done)" "${SWEEP_WALL} s" \
  "read token submitting" "refused: $DENIED_LINE" \
  "worker exit codes" "${codes# }" \
  "worker2 log lines on the outage" "$W2_LOG" \
  "image size" "$(awk -v b="$SIZE" 'BEGIN { printf "%.1f MB", b / 1e6 }')" \
  "total wall time" "$(elapsed) s"
