#!/usr/bin/env bash
# make run: a name server and a 3-node Raft broker group (broker-a) on 127.0.0.1, from the
# files in configs/. Data and logs go under ./data. Ctrl-C stops everything cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/raftmq}
LOGS=data/logs
mkdir -p "$LOGS"
pids=()

stop() {
	trap - INT TERM EXIT
	if [ ${#pids[@]} -gt 0 ]; then
		echo
		echo "stopping (leadership transfer, unregister, flush)..."
		kill -TERM "${pids[@]}" 2>/dev/null || true
		wait "${pids[@]}" 2>/dev/null || true
	fi
	echo "stopped; data and logs are in ./data"
	exit 0
}
trap stop INT TERM EXIT

for port in 9876 10911 11911 12911 10912 11912 12912; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "port $port on 127.0.0.1 is already in use (another raftmq or RocketMQ?); stop it first" >&2
		exit 1
	fi
done

# Each process in its own session: Ctrl-C reaches only this script, which then stops them
# with one SIGTERM each (a second signal would make them exit without draining).
setsid "$BIN" namesrv -c configs/namesrv.conf >"$LOGS/namesrv.log" 2>&1 &
pids+=($!)
for n in 0 1 2; do
	setsid "$BIN" broker -c "configs/dledger/broker-a-n$n.conf" >"$LOGS/broker-a-n$n.log" 2>&1 &
	pids+=($!)
done

echo "waiting for broker-a to elect a leader and register..."
deadline=$((SECONDS + 60))
for n in 0 1 2; do
	until "$BIN" health "127.0.0.1:1${n}915" >/dev/null 2>&1; do
		for p in "${pids[@]}"; do
			kill -0 "$p" 2>/dev/null || { echo "a process exited; see $LOGS/" >&2; tail -n 5 "$LOGS"/*.log >&2; exit 1; }
		done
		if [ $SECONDS -gt $deadline ]; then
			echo "broker-a-n$n not ready after 60 s; see $LOGS/broker-a-n$n.log" >&2
			exit 1
		fi
		sleep 0.2
	done
done
if "$BIN" admin clusterList -n 127.0.0.1:9876 >/dev/null 2>&1; then
	"$BIN" admin clusterList -n 127.0.0.1:9876
fi

cat <<MSG

raftmq is running on 127.0.0.1:
  name server   127.0.0.1:9876
  broker-a n0   127.0.0.1:10911  (raft 10912, http 127.0.0.1:10915)
  broker-a n1   127.0.0.1:11911  (raft 11912, http 127.0.0.1:11915)
  broker-a n2   127.0.0.1:12911  (raft 12912, http 127.0.0.1:12915)
  data and logs ./data (logs in $LOGS)

Try, in another terminal:
  $BIN admin sendMessage -n 127.0.0.1:9876 -t TopicTest -p "hello raftmq"
  $BIN bench e2e -n 127.0.0.1:9876 -t BenchTopic --duration 10s

Ctrl-C stops everything.
MSG
wait -n "${pids[@]}" || true
echo "a process exited on its own; see $LOGS/" >&2
exit 1
