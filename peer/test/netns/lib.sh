# The multi-host test harness, sourced by every test in peer/test/netns/. Each test builds its
# own LAN out of network namespaces — one per host, plus a "switch" namespace holding a bridge —
# joined by veth pairs, and removes all of it on every exit path (the EXIT trap also runs after
# a failure or a signal). Names carry the test's pid and a random tag, so runs in parallel never
# meet; namespaces left by a run that was killed outright (pid gone) are removed by the next one.
# Nothing is ever sent outside these namespaces: no address of the machine is used, and every
# veth end and bridge lives inside a namespace created here.
#
# Without root or network namespaces a test exits 77, which CTest reports as skipped
# (SKIP_RETURN_CODE), with the reason on stderr.
set -euo pipefail

readonly NETNS_SKIP=77
netns_tag="shoal-$$-$(printf '%04x' "$RANDOM")"
netns_all=()    # every namespace this run created
netns_pids=()   # every background process this run started
work=""

source "$(dirname "${BASH_SOURCE[0]}")/../poll.sh"  # fail, until_true
skip() { echo "SKIP: $*" >&2; exit "$NETNS_SKIP"; }
note() { echo "-- $*"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

netns_cleanup() {
  local status=$? p ns pid
  for p in "${netns_pids[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true; done
  for p in "${netns_pids[@]:-}"; do
    [ -n "$p" ] || continue
    # Bounded: a process that ignores SIGTERM for 5 s is killed.
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$p" 2>/dev/null || true
  done
  for ns in "${netns_all[@]:-}"; do
    [ -n "$ns" ] || continue
    # Anything still inside one of our namespaces was started by this test.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ] && [ "$status" -ne "$NETNS_SKIP" ] && [ -n "$work" ]; then
    echo "logs of the failed run:" >&2
    for f in "$work"/*.err "$work"/*.log; do
      [ -f "$f" ] || continue
      echo "== ${f##*/}" >&2
      tail -n 30 "$f" >&2
    done
  fi
  if [ -n "$work" ] && [ -z "${NETNS_KEEP:-}" ]; then rm -rf "$work"; fi
}

# Removes namespaces of earlier runs whose test process no longer exists.
netns_sweep() {
  local ns pid
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^shoal-[0-9]+-' || true); do
    pid="${ns#shoal-}"
    pid="${pid%%-*}"
    kill -0 "$pid" 2>/dev/null && continue
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}

# netns_init: skips unless namespaces can be made; sets $work; installs the cleanup.
netns_init() {
  [ "$(id -u)" -eq 0 ] || skip "network namespaces need root (CI runs as root)"
  command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
  trap netns_cleanup EXIT
  trap 'exit 130' INT TERM
  netns_sweep
  local probe="$netns_tag-probe"
  ip netns add "$probe" 2>/dev/null || skip "cannot create network namespaces here"
  ip netns del "$probe"
  work="$(mktemp -d "/tmp/$netns_tag-XXXXXX")"
}

netns_add() {  # netns_add NAME: a namespace with loopback up and IPv6 DAD off
  ip netns add "$1"
  netns_all+=("$1")
  ip -n "$1" link set lo up
  ip netns exec "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
}

# lan_create N: hosts 1..N on one switch; host i is 10.47.0.i/24 on its eth0.
switch_ns=""
host_ns() { echo "$netns_tag-h$1"; }
lan_create() {
  local n="$1" i
  switch_ns="$netns_tag-sw"
  netns_add "$switch_ns"
  ip -n "$switch_ns" link add br0 type bridge
  ip -n "$switch_ns" link set br0 up
  for i in $(seq 1 "$n"); do lan_join "$i"; done
}
lan_join() {  # lan_join I [BRIDGE IFNAME SUBNET]: host I on the switch (or on another bridge)
  local i="$1" bridge="${2:-br0}" ifname="${3:-eth0}" subnet="${4:-10.47.0}" ns port
  ns="$(host_ns "$i")"
  [ -e "/run/netns/$ns" ] || netns_add "$ns"
  port="port$i"
  [ "$bridge" = br0 ] || port="$bridge-$i"
  if ! ip -n "$switch_ns" link show "$bridge" >/dev/null 2>&1; then
    ip -n "$switch_ns" link add "$bridge" type bridge
    ip -n "$switch_ns" link set "$bridge" up
  fi
  ip -n "$switch_ns" link add "$port" type veth peer name "$ifname" netns "$ns"
  ip -n "$switch_ns" link set "$port" master "$bridge" up
  ip -n "$ns" addr add "$subnet.$i/24" dev "$ifname"
  ip -n "$ns" link set "$ifname" up
}
# The cable of host I, pulled and put back at the switch: the host's eth0 stays configured.
link_down() { ip -n "$switch_ns" link set "port$1" down; }
link_up() { ip -n "$switch_ns" link set "port$1" up; }
# The whole host I gone, cable and all: nothing it had queued will ever be sent.
host_remove() { ip netns del "$(host_ns "$1")"; }

# Every foreground command is bounded: bash runs the EXIT trap (the cleanup) only once the
# command in front of it has returned, so one that hangs would leave everything behind.
readonly step_limit=60
on_host() {  # on_host I CMD...: runs CMD inside host I
  local ns
  ns="$(host_ns "$1")"; shift
  timeout "$step_limit" ip netns exec "$ns" "$@"
}
start_on_host() {  # start_on_host I NAME CMD...: in the background; output in $work/NAME.{out,err}
  local i="$1" name="$2"; shift 2
  ip netns exec "$(host_ns "$i")" "$@" > "$work/$name.out" 2> "$work/$name.err" &
  netns_pids+=($!)
  last_pid=$!
  disown "$last_pid"  # a test kills some on purpose: no job notices
}

# --- a lossy link -------------------------------------------------------------------------------
# lan_join_lossy I DELAY_MS LOSS_PERCENT RATE EMULATOR: host I joins the switch through a link
# that delays every frame towards the host by DELAY_MS and drops LOSS_PERCENT of them (the
# shape of `tc qdisc ... netem delay 20ms loss 1%` on the switch's port), and carries at most RATE
# (tbf, e.g. 100mbit) each way. Host I keeps its own bridge (lb<I>) between its cable and the
# link, so the link is Ethernet: multicast crosses it like everything else. Uses netem where the
# kernel has it, else EMULATOR (link-emulator.c++); sets $link_kind to which one ran.
link_kind=""
netem_works() {
  local probe="$netns_tag-netem"
  netns_add "$probe"
  local ok=1
  ip netns exec "$probe" tc qdisc add dev lo root netem delay 1ms 2>/dev/null || ok=0
  ip netns del "$probe"
  [ "$ok" -eq 1 ]
}
lan_join_lossy() {
  local i="$1" delay="$2" loss="$3" rate="$4" emulator="$5" ns
  ns="$(host_ns "$i")"
  netns_add "$ns"
  ip -n "$switch_ns" link add "lb$i" type bridge
  ip -n "$switch_ns" link set "lb$i" up
  ip -n "$switch_ns" link add "port$i" type veth peer name eth0 netns "$ns"
  ip -n "$switch_ns" link set "port$i" master "lb$i" up
  ip -n "$ns" addr add "10.47.0.$i/24" dev eth0
  ip -n "$ns" link set eth0 up
  local toward="lk${i}a" from="lk${i}b"  # toward: out of br0 towards the host
  if [ -z "${NETNS_FORCE_EMULATOR:-}" ] && netem_works; then
    link_kind="netem"
    ip -n "$switch_ns" link add "$toward" type veth peer name "$from"
    ip netns exec "$switch_ns" tc qdisc add dev "$toward" root handle 1: netem delay "${delay}ms" \
        loss "${loss}%" limit 10000
    ip netns exec "$switch_ns" tc qdisc add dev "$toward" parent 1:1 handle 2: tbf rate "$rate" \
        burst 256kb latency 400ms
  else
    link_kind="link-emulator"
    ip netns exec "$switch_ns" "$emulator" --tap-a "$toward" --tap-b "$from" \
        --delay-ab "$delay" --loss-ab "$loss" --limit 10000 --seed "$i" \
        > "$work/emulator$i.log" 2>&1 &
    netns_pids+=($!)
    emulator_pid=$!
    until_true 10 grep -q '^ready' "$work/emulator$i.log" || fail "link-emulator did not start"
    # A TAP device drops what its ring cannot hold (it has no backpressure): room for bursts.
    ip -n "$switch_ns" link set "$toward" txqueuelen 10000
    ip -n "$switch_ns" link set "$from" txqueuelen 10000
    ip netns exec "$switch_ns" tc qdisc add dev "$toward" root tbf rate "$rate" burst 256kb \
        latency 400ms
  fi
  ip netns exec "$switch_ns" tc qdisc add dev "$from" root tbf rate "$rate" burst 256kb \
      latency 400ms
  ip -n "$switch_ns" link set "$toward" master br0 up
  ip -n "$switch_ns" link set "$from" master "lb$i" up
}
# The emulator's counts (forwarded, lost) once it has stopped; empty with netem.
emulator_counts() {
  [ -n "${emulator_pid:-}" ] || return 0
  kill -TERM "$emulator_pid" 2>/dev/null || true
  until_true 5 grep -q 'forwarded' "$work/emulator$1.log" || true
  grep 'forwarded' "$work/emulator$1.log" || true
}

# --- shoal peers on the hosts -----------------------------------------------------------------
# serve_on I [ARGS...]: `shoal serve` on host I with discovery on, its library $work/lib<I>
# holding one item, events (NDJSON) in $work/peer<I>.out. Needs $shoal. Sets peer_pid_<I>.
# Beacon only unless a test changes discovery_flags: a test never talks to the machine's Avahi.
discovery_flags=(--discover --no-mdns)
serve_on() { serve_as "$1" "$@"; }
# serve_as HOST PEER [ARGS...]: peer PEER (its library, key and event file) on host HOST.
serve_as() {
  local host="$1" i="$2"; shift 2
  mkdir -p "$work/lib$i/item-$i"
  [ -f "$work/lib$i/item-$i/readme.txt" ] || echo "item $i" > "$work/lib$i/item-$i/readme.txt"
  start_on_host "$host" "peer$i" "$shoal" serve --library "$work/lib$i" --listen 0.0.0.0:4747 \
      --name "peer$i" --json --verbose "${discovery_flags[@]}" "$@"
  eval "peer_pid_$i=$last_pid"
  until_true 60 grep -q '"started"' "$work/peer$i.out" \
      || fail "peer $i did not start: $(cat "$work/peer$i.err")"
}
# shoal_cli ARGS...: a client command (`shoal peers`, `stop`...), bounded like every step.
shoal_cli() { timeout "$step_limit" "$shoal" "$@"; }
peer_id() { shoal_cli id --library "$work/lib$1"; }
# peers_json I: host I's `shoal peers --json` (the control socket is a file: no namespace needed).
peers_json() { shoal_cli peers --library "$work/lib$1" --json; }
# peer_field I ID FIELD: FIELD of peer ID in host I's peer list, or nothing.
peer_field() {
  peers_json "$1" | python3 -c '
import json, sys
for p in json.load(sys.stdin).get("peers", []):
    if p["peerId"] == sys.argv[1]:
        print(p.get(sys.argv[2], ""))' "$2" "$3"
}
# has_peers I N: host I has exactly N established peers.
has_peers() {
  [ "$(peers_json "$1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("peers", [])))')" = "$2" ]
}
# lost_reason I ID: the reason of host I's last peerLost event for ID.
lost_reason() {
  python3 - "$work/peer$1.out" "$2" <<'PY'
import json, sys
reason = ""
for line in open(sys.argv[1]):
    e = json.loads(line)
    if "peerLost" in e and e["peerLost"]["peerId"] == sys.argv[2]:
        reason = e["peerLost"]["reason"]
print(reason)
PY
}
# id_lower A B: whether peer id A is bytewise lower than B ([HS-17]). The text form is base32 with
# a check character after every 13 (docs/protocol.md §2.2), so text order is not byte order.
id_lower() {
  python3 - "$1" "$2" <<'PY'
import base64, sys
def raw(text):
    t = text.replace("-", "")
    data = "".join(t[g * 14:g * 14 + 13] for g in range(4))
    return base64.b32decode(data + "====")
sys.exit(0 if raw(sys.argv[1]) < raw(sys.argv[2]) else 1)
PY
}
# connected_lan N [ARGS...]: N hosts on one switch, each serving with discovery and ARGS, and
# every one connected to all the others.
connected_lan() {
  local n="$1" i; shift
  lan_create "$n"
  for i in $(seq 1 "$n"); do serve_on "$i" "$@"; done
  for i in $(seq 1 "$n"); do
    until_true 10 has_peers "$i" $(( n - 1 )) || fail "host $i never had $(( n - 1 )) peers"
  done
}
# Discovery and liveness fast enough for a test to see peers come and go in seconds.
fast_discovery=(--discover-interval 500 --idle-timeout 300 --dead-timeout 1500)
