# shellcheck shell=bash
# The testbed's underlay: a bridge in the host namespace and one network namespace
# per node (plus one "outside" host) wired to it with veth pairs. The host
# namespace only bridges (its ip_forward is left alone), so nothing the cluster
# sends is routed off the machine.

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

setup_bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$BRIDGE_IP/$NODE_PREFIX" dev "$BRIDGE"
  fi
  if testbed_dual; then ip -6 addr replace "$BRIDGE_IP6/$NODE_PREFIX6" dev "$BRIDGE" nodad; fi
  ip link set "$BRIDGE" up
  # With br_netfilter, bridged frames traverse the host's FORWARD chain: let the
  # testbed's own frames through whatever policy the host has.
  if ! iptables -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment netconform-testbed -j ACCEPT 2>/dev/null; then
    iptables -I FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment netconform-testbed -j ACCEPT
  fi
  if testbed_dual && ! ip6tables -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment netconform-testbed -j ACCEPT 2>/dev/null; then
    ip6tables -I FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment netconform-testbed -j ACCEPT
  fi
}

# setup_host_ns NS IP VETH [IP6]: a namespace with one interface on the bridge
# (and an IPv6 address on it when the testbed is dual-stack).
setup_host_ns() {
  local ns=$1 ip=$2 veth=$3 ip6=${4:-}
  ip netns list | grep -qx "$ns\( .*\)\?" || ip netns add "$ns"
  # A host end left from an earlier namespace (its peer is not in this one):
  # replace the pair.
  if ip link show "$veth" >/dev/null 2>&1 && ! in_ns "$ns" ip link show eth0 >/dev/null 2>&1; then
    ip link del "$veth"
  fi
  if ! ip link show "$veth" >/dev/null 2>&1; then
    ip link add "$veth" type veth peer name eth0 netns "$ns"
    ip link set "$veth" master "$BRIDGE" up
  fi
  in_ns "$ns" ip link set lo up
  in_ns "$ns" ip addr replace "$ip/$NODE_PREFIX" dev eth0
  if [[ -n $ip6 ]]; then
    in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=0
    # nodad: the address is usable at once; every address on the bridge is
    # assigned here, so there is nothing to detect.
    in_ns "$ns" ip -6 addr replace "$ip6/$NODE_PREFIX6" dev eth0 nodad
  fi
  in_ns "$ns" ip link set eth0 up
}

# node_ip6 NODE / outside_ip6: the IPv6 address, or nothing on an IPv4 testbed.
node_ip6() { if testbed_dual; then echo "${NODE_IP6[$1]}"; fi; }
outside_ip6() { if testbed_dual; then echo "$OUTSIDE_IP6"; fi; }

setup_node_network() {
  local n=$1
  setup_host_ns "$n" "${NODE_IP[$n]}" "${NODE_VETH[$n]}" "$(node_ip6 "$n")"
  in_ns "$n" sysctl -qw net.ipv4.ip_forward=1
  in_ns "$n" sysctl -qw net.bridge.bridge-nf-call-iptables=1
  in_ns "$n" sysctl -qw net.bridge.bridge-nf-call-ip6tables=1
  # Unprivileged ping sockets for every group, as systemd's sysctl.d default
  # (50-default.conf) sets on a real node: node daemons ping without root.
  in_ns "$n" sysctl -qw net.ipv4.ping_group_range="0 2147483647"
  # No default route: a node reaches the other nodes, their pod CIDRs (added
  # once the controller manager assigns them) and the service CIDR, nothing else.
  in_ns "$n" ip route replace "$SERVICE_CIDR" dev eth0
  if testbed_dual; then
    in_ns "$n" sysctl -qw net.ipv6.conf.all.forwarding=1
    # Pod addresses come from the CNI's ranges (bridge: host-local), which
    # hands each one out once: duplicate detection only delays every new pod.
    in_ns "$n" sysctl -qw net.ipv6.conf.default.accept_dad=0
    in_ns "$n" ip -6 route replace "$SERVICE_CIDR6" dev eth0
  fi
}

setup_outside_host() {
  setup_host_ns "$OUTSIDE_NS" "$OUTSIDE_IP" nctb-out "$(outside_ip6)"
  # The outside host reaches pods through the nodes (no NAT on the way in).
}

# start_outside_agent: the agent's echo servers on the outside host (http 80,
# tcp 8080, udp 8081, the agent's defaults), the target of the checks that
# leave the cluster. A copy of the binary, so a rebuild does not change it
# under a running testbed. `down` stops it with every recorded process.
OUTSIDE_AGENT_ARGS=(serve --http 80 --tcp 8080 --udp 8081)
start_outside_agent() {
  local bin="$TESTBED_DIR/../target/x86_64-unknown-linux-gnu/release/netconform-agent"
  if [[ ! -x $bin ]]; then
    # A given NETCONFORM_AGENT_ARCHIVE builds nothing here: no outside agent,
    # and `testbed env` then names no outside host (its checks are skipped).
    log "no agent binary at $bin: the outside host runs no agent (agent/image/build.sh builds one)"
    return 0
  fi
  if ! cmp -s "$bin" "$NC_STATE/outside-agent"; then
    stop_recorded outside-agent
    install -m 0755 "$bin" "$NC_STATE/outside-agent"
  fi
  start_proc outside-agent ip netns exec "$OUTSIDE_NS" "$NC_STATE/outside-agent" "${OUTSIDE_AGENT_ARGS[@]}"
}

# route_pod_cidrs HOST...: each named namespace routes every other node's pod
# CIDR to that node over the underlay, so pod traffic crosses nodes without NAT.
# The bridge CNI needs it on every node and the outside host; under flannel
# only the outside host, no flannel member, needs it (like a router in front).
route_pod_cidrs() {
  local n m cidr cidr6=""
  for m in "${NODES[@]}"; do
    cidr=$(node_pod_cidr "$m")
    if testbed_dual; then
      cidr6=$(node_pod_cidr6 "$m")
      [[ -n $cidr6 ]] || die "node $m has no IPv6 pod CIDR (spec.podCIDRs)"
    fi
    for n in "$@"; do
      [[ $n == "$m" ]] && continue
      in_ns "$n" ip route replace "$cidr" via "${NODE_IP[$m]}" dev eth0
      if [[ -n $cidr6 ]]; then in_ns "$n" ip -6 route replace "$cidr6" via "${NODE_IP6[$m]}" dev eth0; fi
    done
  done
}

node_pod_cidr() { kubectl_admin get node "$1" -o jsonpath='{.spec.podCIDR}'; }
# The node's IPv6 pod CIDR: the second of spec.podCIDRs (IPv4 is primary).
node_pod_cidr6() { kubectl_admin get node "$1" -o jsonpath='{.spec.podCIDRs[1]}'; }
node_has_pod_cidr() { [[ -n $(node_pod_cidr "$1" 2>/dev/null) ]]; }
