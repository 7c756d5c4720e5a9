#!/usr/bin/env bash
# kill -9 check of the send ledger: queue N messages through the API while `nudge serve` sends
# them to Postfix's smtp-sink, kill the server with SIGKILL in the middle, start it again, wait
# until nothing is pending, then count the Message-IDs that reached the sink.
#
#   scripts/kill-test.sh [--messages N (10000)] [--kill-after K (2000 messages at the sink)]
#                        [--nudge PATH (target/release/nudge)]
#
# Loopback only; bounded in time (--timeout seconds, default 600). Needs smtp-sink (run
# ../shared/bench/smtp-limit.sh once to install it), curl and python3.
#
# A message can reach the sink twice only in the window ARCHITECTURE.md names: the relay had
# accepted it but its outcome (recorded in batches) had not yet committed when the process died. After the restart
# such a message is still `sending` under the dead process's lease, and is claimed and sent again
# when that lease (2 minutes) runs out: so the script waits at least that long.
set -euo pipefail

messages=10000 kill_after=2000 timeout=600
root=$(cd "$(dirname "$0")/.." && pwd)
nudge="$root/target/release/nudge"
while [ $# -gt 0 ]; do
  case "$1" in
    --messages) messages="$2"; shift 2 ;;
    --kill-after) kill_after="$2"; shift 2 ;;
    --nudge) nudge="$2"; shift 2 ;;
    --timeout) timeout="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x "$nudge" ] || { echo "$nudge not found: cargo build --release -p nudge" >&2; exit 2; }
[ -x /usr/sbin/smtp-sink ] || { echo "smtp-sink missing: run ../shared/bench/smtp-limit.sh once" >&2; exit 2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d /tmp/nudge-kill.XXXXXX); chmod 755 "$work"  # smtp-sink writes as nobody
dumps="$work/dumps"; mkdir -p "$dumps"; chmod 777 "$dumps"
data="$work/data"
smtp_port=$(free_port) http_port=$(free_port)
deadline=$(( $(date +%s) + timeout ))
sink_pid="" server_pid="" poster_pid=""
cleanup() {
  for p in $poster_pid $server_pid $sink_pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
check_time() { [ "$(date +%s)" -lt "$deadline" ] || { echo "timed out after ${timeout}s" >&2; exit 1; }; }

# One file per mail transaction (-d); -u: smtp-sink drops root privileges.
/usr/sbin/smtp-sink -u nobody -m 1000 -d "$dumps/%H%M%S." "127.0.0.1:$smtp_port" 1024 &
sink_pid=$!

export NUDGE_DATA_DIR="$data"
key=$("$nudge" api-key create --name kill-test 2>/dev/null | tail -n 1)
api="http://127.0.0.1:$http_port/api/v1"

start_server() {
  "$nudge" serve --listen "127.0.0.1:$http_port" --smtp-url "smtp://127.0.0.1:$smtp_port" \
    --from news@kill.example.com >>"$work/serve.log" 2>&1 &
  server_pid=$!
  until curl -sf "http://127.0.0.1:$http_port/healthz" >/dev/null; do check_time; sleep 0.1; done
}

# POSTs message i; the same Idempotency-Key on a repeat returns the first message.
post_all() {
  seq 1 "$messages" | xargs -P 8 -I{} curl -s -o /dev/null -w '%{http_code}\n' \
    -X POST "$api/messages" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -H "Idempotency-Key: kill-{}" \
    -d '{"to":"reader{}@kill.example.com","subject":"Message {} for {{ email }}","html":"<p>Hello {{ email }}, this is message {}.</p>"}' \
    || true
}
delivered() { find "$dumps" -type f | wc -l; }

start_server
echo "queueing $messages messages through $api/messages while the server sends"
post_all >"$work/posts-1.txt" &
poster_pid=$!
while [ "$(delivered)" -lt "$kill_after" ]; do check_time; sleep 0.05; done
kill -9 "$server_pid"; wait "$server_pid" 2>/dev/null || true
echo "kill -9 with $(delivered) messages at the sink"
wait "$poster_pid" || true; poster_pid=""
echo "first round of POSTs: $(grep -c '^202$' "$work/posts-1.txt" || true) accepted before the kill"

start_server
echo "restarted; POSTing all $messages again with the same Idempotency-Keys"
post_all >"$work/posts-2.txt"
echo "second round: $(sort "$work/posts-2.txt" | uniq -c | tr '\n' ' ')"

pending() {
  local n=0
  for s in queued sending retrying; do
    c=$(curl -sf "$api/messages?status=$s&limit=1" -H "Authorization: Bearer $key" |
      python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
    n=$((n + c))
  done
  echo "$n"
}
echo "waiting until nothing is queued, sending or retrying (a dead lease lasts 2 minutes)"
while [ "$(pending)" -gt 0 ]; do check_time; sleep 2; done
sleep 1
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""

# Count Message-IDs in the dumps (the message's own header, not smtp-sink's).
grep -h -i -m1 '^Message-ID:' -r "$dumps" | tr -d '\r' | sort >"$work/ids.txt"
total=$(wc -l <"$work/ids.txt")
distinct=$(uniq "$work/ids.txt" | wc -l)
files=$(delivered)
echo "sink: $files transactions, $total Message-IDs, $distinct distinct, $((total - distinct)) duplicates"
if [ "$total" -ne "$distinct" ]; then
  echo "duplicated Message-IDs:"; uniq -d "$work/ids.txt" | head -20
fi
echo "work directory (dumps, server log): $work"
