#!/usr/bin/env bash
# testbed/bench --floor: the latency floor of the testbed's underlay against
# what netconform reports. The agent runs directly in two node network
# namespaces (no pod, no exec, no CNI, no iptables of the pod path): TCP
# connect and UDP round trip, 5 warm-up + 50 samples one at a time,
# alternating three times with the quiet latency scenario; the same node
# pair's median pod-to-pod p50 is divided by the median floor. Target: within
# 1.5x. Appends to testbed/bench-results.tsv.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=common.sh
source "$here/lib/common.sh"
results="$here/bench-results.tsv"
agent="$root/target/x86_64-unknown-linux-gnu/release/netconform-agent"
a=${NODES[1]} b=${NODES[2]}

bash "$here/testbed" up >&2
[[ -x $agent ]] || die "no agent binary at $agent (testbed up builds it)"
eval "$(bash "$here/testbed" env)"
work=$(mktemp -d)
server_pid=
cleanup() { [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# The floor: node a's namespace to node b's address, bounded by `timeout`.
ip netns exec "$b" timeout 600 "$agent" serve --tcp 18080 --udp 18081 >"$work/server.log" 2>&1 &
server_pid=$!
sleep 1
# Microsecond figures on a 2-vCPU machine move by tens of microseconds from one
# run to the next (which vCPU each end wakes on), so floor and pod-to-pod are
# measured alternately, three times each, and the medians compared.
for round in 1 2 3; do
  printf '{"sequential":true,"probes":[%s,%s]}' \
    "{\"id\":\"tcp\",\"kind\":\"tcp\",\"host\":\"${NODE_IP[$b]}\",\"port\":18080,\"timeout_ms\":1000,\"samples\":55}" \
    "{\"id\":\"udp\",\"kind\":\"udp\",\"host\":\"${NODE_IP[$b]}\",\"port\":18081,\"timeout_ms\":1000,\"samples\":55}" |
    ip netns exec "$a" timeout 120 "$agent" probe >"$work/raw-$round.json"
  mkdir -p "$work/suite-$round"
  (cd "$root" && NETCONFORM_REQUIRE_CLUSTER=1 NETCONFORM_REPORT_DIR=$work/suite-$round \
    cargo test --quiet -p netconform-suite --test conformance -- latency:: >"$work/suite-$round.log" 2>&1) ||
    { cat "$work/suite-$round.log" >&2; die "the latency scenario failed"; }
done

python3 - "$work" "$a" "$b" "$results" "$(hostname)" <<'PY'
import json, statistics, sys, datetime
work, a, b, out, host = sys.argv[1:]
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
lines = []
for proto, trial in [("tcp", "latency::tcp-connect-pairs"), ("udp", "latency::udp-round-trip-pairs")]:
    floors, pods = [], []
    for r in (1, 2, 3):
        raw = {p["id"]: p["attempts"][5:] for p in json.load(open(f"{work}/raw-{r}.json"))}
        floors.append(statistics.median(s["latency_us"] for s in raw[proto] if s["outcome"] == "connected"))
        checks = {c["trial"]: c for c in json.load(open(f"{work}/suite-{r}/results.json"))["checks"]}
        pods.append(next(p for p in checks[trial]["node_pairs"] if p["from"] == a and p["to"] == b)["p50_us"])
    floor, pod = statistics.median(floors), statistics.median(pods)
    ratio = pod / floor
    print(f"{proto}: node-to-node floor p50 {floor:.0f} us (rounds {floors}), pod-to-pod p50 {pod:.0f} us (rounds {pods}), ratio {ratio:.2f}x (target 1.5x)")
    lines.append(f"{now}\t{host}\tlatency-{proto}-pod-over-floor\t{ratio:.2f}x ({pod:.0f}us/{floor:.0f}us)\t1.5x\t{'within' if ratio <= 1.5 else 'OVER'}")
with open(out, "a") as f:
    f.write("\n".join(lines) + "\n")
PY
