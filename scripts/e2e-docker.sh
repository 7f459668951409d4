#!/usr/bin/env bash
# make e2e-docker: bring up docker-compose.yml (two name servers, broker-a and broker-b as
# 3-node Raft groups), send and consume through it with `raftmq admin`, kill broker-a's
# leader container, check that sends and consumption go on, and tear everything down
# (containers, network, volumes) whatever happens.
#
# Needs a Docker engine, docker-compose (v1) or `docker compose` (v2), bin/raftmq and the
# image (make docker). Clients run on the host against the containers' addresses on the
# compose network raftmq-net (172.30.77.0/24); where the host cannot reach that bridge
# (Docker Desktop) they run in a container on raftmq-net instead.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/raftmq}
IMAGE=${RAFTMQ_IMAGE:-raftmq:dev}
PROJECT=${PROJECT:-raftmq-e2e}
NS='172.30.77.2:9876;172.30.77.3:9876'
TOPIC=E2EDockerTopic
N=${N:-20}
export RAFTMQ_IMAGE=$IMAGE

if docker compose version >/dev/null 2>&1; then
	compose() { docker compose -p "$PROJECT" "$@"; }
else
	compose() { docker-compose -p "$PROJECT" "$@"; }
fi

log() { echo "== e2e-docker: $*"; }
fail() {
	echo "== e2e-docker: FAIL: $*" >&2
	exit 1
}

teardown() {
	rc=$?
	trap - EXIT INT TERM
	if [ $rc -ne 0 ]; then
		echo "== e2e-docker: failed (exit $rc); last log lines of each container:" >&2
		for c in $(compose ps -q 2>/dev/null); do
			echo "--- $(docker inspect -f '{{.Name}}' "$c")" >&2
			docker logs --tail 15 "$c" 2>&1 | sed 's/^/    /' >&2 || true
		done
	fi
	log "tearing down (containers, network, volumes)"
	compose down -v --remove-orphans -t 10 >/dev/null 2>&1 || compose down -v --remove-orphans >&2 || true
	exit $rc
}
trap teardown EXIT
trap 'exit 130' INT TERM

[ -x "$BIN" ] || fail "$BIN is missing: run make build"
docker image inspect "$IMAGE" >/dev/null 2>&1 || fail "image $IMAGE is missing: run make docker"
for c in raftmq-namesrv-1 raftmq-broker-a-n0; do
	if docker inspect "$c" >/dev/null 2>&1 && [ "$(docker inspect -f '{{index .Config.Labels "com.docker.compose.project"}}' "$c")" != "$PROJECT" ]; then
		fail "container $c belongs to another compose project: stop it first (docker-compose -p <project> down)"
	fi
done

log "starting the cluster (project $PROJECT)"
compose down -v --remove-orphans >/dev/null 2>&1 || true
compose up -d

# Clients: the host binary if the bridge is reachable from here, else the image on raftmq-net.
if (exec 3<>/dev/tcp/172.30.77.2/9876) 2>/dev/null || { sleep 2; (exec 3<>/dev/tcp/172.30.77.2/9876) 2>/dev/null; }; then
	adm() { "$BIN" admin "$@"; }
	log "clients run on the host (bridge raftmq-net reachable)"
else
	adm() { docker run --rm --network raftmq-net "$IMAGE" admin "$@"; }
	log "clients run in containers on raftmq-net (bridge not reachable from the host)"
fi

# wait_for DESCRIPTION SECONDS COMMAND...: poll COMMAND until it succeeds or time runs out.
wait_for() {
	local what=$1 secs=$2
	shift 2
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || fail "$what: not within ${secs}s"
		sleep 0.5
	done
}

healthy() {
	local s
	for c in raftmq-broker-{a,b}-n{0,1,2}; do
		s=$(docker inspect -f '{{.State.Health.Status}}' "$c" 2>/dev/null) || return 1
		[ "$s" = healthy ] || return 1
	done
}
both_groups_led() {
	local out
	out=$(adm clusterList -n "$NS") || return 1
	echo "$out" | grep -Eq '^RaftCluster +broker-a +0 ' && echo "$out" | grep -Eq '^RaftCluster +broker-b +0 '
}
log "waiting for every broker node to be healthy and both groups to have a leader"
wait_for "all broker containers healthy" 120 healthy
wait_for "broker-a and broker-b registered with a leader (BID 0)" 60 both_groups_led
adm clusterList -n "$NS"

adm updateTopic -n "$NS" -c RaftCluster -t "$TOPIC" -r 4 -w 4

# send FROM TO: messages e2e-FROM .. e2e-TO, each must be SEND_OK.
send() {
	local i out
	for ((i = $1; i <= $2; i++)); do
		out=$(adm sendMessage -n "$NS" -t "$TOPIC" -p "e2e-$i" -k "k$i") || fail "send e2e-$i: $out"
		echo "$out" | grep -q ' SEND_OK ' || fail "send e2e-$i not SEND_OK: $out"
	done
}
# consumed_all COUNT: every body e2e-1 .. e2e-COUNT is read back from the topic.
consumed_all() {
	local out i
	out=$(adm consumeMessage -n "$NS" -t "$TOPIC" -c 100000) || return 1
	for ((i = 1; i <= $1; i++)); do
		echo "$out" | grep -q "BODY: e2e-$i\$" || { echo "missing e2e-$i" >&2; return 1; }
	done
}

log "sending $N messages"
send 1 "$N"
wait_for "consume the first $N messages" 30 consumed_all "$N"
log "consumed all $N"

leader_id() { adm groupStatus -n "$NS" -b broker-a | sed -n 's/^Asked: .*Leader: \(n[0-9]\) .*/\1/p'; }
old=$(leader_id)
[ -n "$old" ] || fail "no leader for broker-a"
log "killing broker-a's leader container raftmq-broker-a-$old"
docker kill "raftmq-broker-a-$old" >/dev/null

new_leader() {
	local id
	id=$(leader_id) || return 1
	[ -n "$id" ] && [ "$id" != "$old" ]
}
wait_for "broker-a elects a new leader" 60 new_leader
log "broker-a's new leader: $(leader_id)"
adm clusterList -n "$NS"

log "sending $N more messages with raftmq-broker-a-$old down"
send $((N + 1)) $((2 * N))
wait_for "consume all $((2 * N)) messages" 60 consumed_all $((2 * N))
log "consumed all $((2 * N)) after the failover"
out=$(adm queryMsgByKey -n "$NS" -t "$TOPIC" -k k1) || fail "queryMsgByKey: $out"
echo "$out" | grep -Eq '^[0-9A-F]{32} ' || fail "queryMsgByKey found nothing for k1: $out"
log "PASS"
