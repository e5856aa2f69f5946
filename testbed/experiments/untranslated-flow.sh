#!/bin/bash
# testbed/experiments/untranslated-flow.sh true|false
#
# Shows kubernetes issue 48719 as netconform met it (docs/verdicts.md): the
# Service wait's connections, sent before the Service is programmed, leave
# conntrack entries with no translation; a check's later connection from the
# same source port follows one into nowhere. The argument is the wait's
# `reserved_source_ports`: with false the check fails (timeouts and "No route
# to host"), with true it connects on every sample.
#
# The worker node's netns plays the client pod (its own connections to a
# ClusterIP are translated in nat OUTPUT, by the same conntrack); a RETURN
# rule plays "not programmed yet"; a 32-port ephemeral range makes the port
# collision certain instead of rare. Needs a running testbed and a built agent
# (cargo build -p netconform-agent); run as root. Undoes all of it on exit.
set -euo pipefail
reserved=${1:?usage: $0 true|false}
node=netconform-worker
root=$(cd "$(dirname "$0")/../.." && pwd)
agent=$root/target/debug/netconform-agent
kubectl=$(find ~/.cache/netconform -path '*/bin/kubectl' | sort | tail -1)
dns=$("$kubectl" --kubeconfig /var/lib/netconform-testbed/kubeconfig -n kube-system \
  get svc kube-dns -o jsonpath='{.spec.clusterIP}')
in_node() { ip netns exec "$node" "$@"; }
unprogrammed=(OUTPUT -p tcp -d "$dns" --dport 53 -m comment --comment netconform-experiment -j RETURN)
range=$(in_node cat /proc/sys/net/ipv4/ip_local_port_range)
undo() {
  in_node iptables -t nat -D "${unprogrammed[@]}" 2>/dev/null || true
  in_node conntrack -D -p tcp -d "$dns" --dport 53 >/dev/null 2>&1 || true
  in_node sysctl -qw net.ipv4.ip_local_port_range="$range"
}
trap undo EXIT
in_node sysctl -qw net.ipv4.ip_local_port_range="40000 40031"

outcomes() { # the agent's results on stdin -> a count of each outcome, and the first failures' details
  python3 -c 'import json, sys, collections
r = json.load(sys.stdin)[0]["attempts"]
print(dict(collections.Counter(a["outcome"] for a in r)), [a.get("detail") for a in r if a["outcome"] != "connected"][:2])'
}

in_node iptables -t nat -I "${unprogrammed[@]}"
echo -n "the wait, Service not programmed: "
echo '{"probes":[{"id":"wait","kind":"tcp","host":"'"$dns"'","port":53,"timeout_ms":500,"samples":8,"until_connected":true,"interval_ms":200,"reserved_source_ports":'"$reserved"'}],"sequential":false}' |
  in_node "$agent" probe 2>/dev/null | outcomes
in_node iptables -t nat -D "${unprogrammed[@]}"
echo "untranslated conntrack entries it left: $(in_node conntrack -L -p tcp -d "$dns" --dport 53 2>/dev/null | grep -c "src=$dns dst=" || true)"
echo -n "a check, Service programmed: "
echo '{"probes":[{"id":"check","kind":"tcp","host":"'"$dns"'","port":53,"timeout_ms":2000,"samples":12}],"sequential":true}' |
  in_node "$agent" probe 2>/dev/null | outcomes
