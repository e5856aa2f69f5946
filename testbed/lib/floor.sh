#!/usr/bin/env bash
# testbed/bench --floor: the latency floor of the testbed's underlay against
# what netconform reports. The agent runs directly in two node network
# namespaces (no pod, no exec, no CNI, no iptables of the pod path): TCP
# connect and UDP round trip, 5 warm-up + 50 samples one at a time. Then the
# quiet latency scenario runs and the same node pair's pod-to-pod p50 is
# divided by the floor. Target: within 1.5x. Appends to testbed/bench-results.tsv.
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
ip netns exec "$b" timeout 120 "$agent" serve --tcp 18080 --udp 18081 >"$work/server.log" 2>&1 &
server_pid=$!
sleep 1
printf '{"sequential":true,"probes":[%s,%s]}' \
  "{\"id\":\"tcp\",\"kind\":\"tcp\",\"host\":\"${NODE_IP[$b]}\",\"port\":18080,\"timeout_ms\":1000,\"samples\":55}" \
  "{\"id\":\"udp\",\"kind\":\"udp\",\"host\":\"${NODE_IP[$b]}\",\"port\":18081,\"timeout_ms\":1000,\"samples\":55}" |
  ip netns exec "$a" timeout 120 "$agent" probe >"$work/raw.json"

# netconform's quiet phase on the same cluster.
(cd "$root" && NETCONFORM_REQUIRE_CLUSTER=1 NETCONFORM_REPORT_DIR=$work \
  cargo test --quiet -p netconform-suite --test conformance -- latency:: >"$work/suite.log" 2>&1) ||
  { cat "$work/suite.log" >&2; die "the latency scenario failed"; }

python3 - "$work/raw.json" "$work/results.json" "$a" "$b" "$results" "$(hostname)" <<'PY'
import json, statistics, sys, datetime
raw, res, a, b, out, host = sys.argv[1:]
raw = {p["id"]: p["attempts"][5:] for p in json.load(open(raw))}
checks = {c["trial"]: c for c in json.load(open(res))["checks"]}
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
lines = []
for proto, trial in [("tcp", "latency::tcp-connect-pairs"), ("udp", "latency::udp-round-trip-pairs")]:
    ok = [s["latency_us"] for s in raw[proto] if s["outcome"] == "connected"]
    floor = statistics.median(ok)
    pair = next(p for p in checks[trial]["node_pairs"] if p["from"] == a and p["to"] == b)
    ratio = pair["p50_us"] / floor
    print(f"{proto}: node-to-node floor p50 {floor:.0f} us ({len(ok)} samples), pod-to-pod p50 {pair['p50_us']} us, ratio {ratio:.2f}x (target 1.5x)")
    lines.append(f"{now}\t{host}\tlatency-{proto}-pod-over-floor\t{ratio:.2f}x ({pair['p50_us']}us/{floor:.0f}us)\t1.5x\t{'within' if ratio <= 1.5 else 'OVER'}")
with open(out, "a") as f:
    f.write("\n".join(lines) + "\n")
PY
