#!/usr/bin/env bash
# A real MinIO server for tests and local runs.
#
#   scripts/minio.sh install          go install the pinned MinIO if the binary is missing
#   scripts/minio.sh start DIR PORT   start it on 127.0.0.1:PORT (console on PORT+1, or
#                                     $MINIO_CONSOLE_PORT), data in DIR/data, log in
#                                     DIR/minio.log, pid in DIR/minio.pid; waits until
#                                     /minio/health/live and /minio/health/ready answer
#                                     (60 s) and prints the REHABGW_TEST_S3 value
#   scripts/minio.sh stop DIR         stop the server whose pid is in DIR/minio.pid
#
# Credentials: $MINIO_ROOT_USER / $MINIO_ROOT_PASSWORD, defaulting to throw-away
# development values. Never use these scripts for production data.
set -euo pipefail

MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
GO="${GO:-go}"
BIN="$("$GO" env GOPATH | cut -d: -f1)/bin/minio"

usage() {
	sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# alive: the process exists and is not a zombie (an unreaped zombie still
# answers kill -0, e.g. in a container whose pid 1 does not reap).
alive() {
	[ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
	[ "$(sed -E 's/^.*\) (.).*$/\1/' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

cmd="${1:-}"
case "$cmd" in
install)
	if [ -x "$BIN" ]; then
		echo "minio: $BIN"
		exit 0
	fi
	echo "minio: building github.com/minio/minio@$MINIO_VERSION (a few minutes the first time)"
	start=$(date +%s)
	"$GO" install "github.com/minio/minio@$MINIO_VERSION"
	echo "minio: $BIN built in $(($(date +%s) - start)) s"
	;;

start)
	[ $# -eq 3 ] || usage
	dir="$2"
	port="$3"
	console="${MINIO_CONSOLE_PORT:-$((port + 1))}"
	case "$port" in '' | *[!0-9]*) echo "minio: PORT must be a number" >&2; exit 2 ;; esac
	if [ ! -x "$BIN" ]; then
		echo "minio: $BIN missing; run: $0 install" >&2
		exit 1
	fi
	mkdir -p "$dir/data"
	dir="$(cd "$dir" && pwd)"
	pidfile="$dir/minio.pid"
	if [ -f "$pidfile" ] && alive "$(cat "$pidfile")"; then
		echo "minio: already running (pid $(cat "$pidfile"))" >&2
		exit 1
	fi
	if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/"; then
		echo "minio: something already answers on 127.0.0.1:$port" >&2
		exit 1
	fi
	export MINIO_ROOT_USER="${MINIO_ROOT_USER:-rehabgw}"
	export MINIO_ROOT_PASSWORD="${MINIO_ROOT_PASSWORD:-rehabgw-dev-secret}"
	export MINIO_BROWSER="${MINIO_BROWSER:-off}" MINIO_UPDATE=off
	nohup "$BIN" server "$dir/data" \
		--address "127.0.0.1:$port" \
		--console-address "127.0.0.1:$console" \
		--quiet >"$dir/minio.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$pidfile"
	deadline=$(($(date +%s) + 60))
	for probe in live ready; do
		until curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$port/minio/health/$probe"; do
			if [ -z "$(jobs -rp)" ]; then # our child exited (kill -0 would see a zombie)
				echo "minio: exited at start; log:" >&2
				cat "$dir/minio.log" >&2
				rm -f "$pidfile"
				exit 1
			fi
			if [ "$(date +%s)" -ge "$deadline" ]; then
				echo "minio: /minio/health/$probe did not answer within 60 s; stopping pid $pid" >&2
				kill "$pid" 2>/dev/null || true
				rm -f "$pidfile"
				exit 1
			fi
			sleep 0.2
		done
	done
	echo "minio: pid $pid on 127.0.0.1:$port (console 127.0.0.1:$console), data $dir/data"
	echo "REHABGW_TEST_S3=http://$MINIO_ROOT_USER:$MINIO_ROOT_PASSWORD@127.0.0.1:$port/rehabgw-test"
	;;

stop)
	[ $# -eq 2 ] || usage
	pidfile="$2/minio.pid"
	if [ ! -f "$pidfile" ]; then
		echo "minio: no $pidfile; not running" >&2
		exit 0
	fi
	pid="$(cat "$pidfile")"
	if alive "$pid"; then
		kill "$pid"
		for _ in $(seq 100); do
			alive "$pid" || break
			sleep 0.1
		done
		if alive "$pid"; then
			echo "minio: pid $pid ignored TERM for 10 s; killing" >&2
			kill -9 "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$pidfile"
	echo "minio: stopped (pid $pid)"
	;;

*)
	usage
	;;
esac
