# shellcheck shell=bash
# `fault NAME` breaks the testbed's network on purpose, the way a check targets;
# `heal` undoes every fault that is active. Each fault touches only the
# testbed's own namespaces and processes. Active faults are recorded in
# $NC_STATE/faults/ so `heal` knows what to undo.

FAULTS_DIR="$NC_STATE/faults"
# Every fault, with what it breaks (`testbed fault --list` prints this).
FAULT_LIST=(
  "snat|pod-to-pod traffic leaving a node is masqueraded to the node's IP"
  "no-route|the two workers lose their routes to each other's pod CIDR"
  "dns-down|no DNS server answers (CoreDNS scaled to zero)"
  "dns-tcp-blocked|DNS answers over UDP only"
  "dns-no-reverse|the cluster DNS has no reverse zones: PTR lookups get NXDOMAIN"
  "icmp-blocked|ping to and between pods dropped"
  "apiserver-from-pods-blocked|pods cannot reach the API server's Service"
  "affinity-ignored|kube-proxy on one worker ignores ClientIP session affinity"
  "service-stale-updates|kube-proxy on one worker never sees a Service update"
  "endpoint-slices-first-only|kube-proxy on one worker reads one EndpointSlice per Service and family"
  "hostport-off|hostPorts lead nowhere"
  "hostport-ignores-host-ip|hostPorts bound on every node address, whatever their hostIP"
  "hairpin-off|(--cni bridge) the bridge sends no frame back out of the port it came in on: a pod cannot reach itself through its Service"
  "service-rules-off|kube-proxy stopped on one worker and its Service rules flushed"
  "netpol-off|the NetworkPolicy enforcers stopped"
  "netpol-stale-updates|the enforcers follow new and deleted objects but ignore updates"
  "mtu|one worker's uplink MTU below the pods' 1500"
  "slow-pair|one node pair 40 ms slower"
  "throttled-pair|one node pair's bandwidth capped"
  "outside-unreachable|pods cannot reach the outside host"
  "outside-foreign-snat|traffic to the outside host leaves with an address the cluster does not account for"
  "vxlan-blocked|(--cni flannel) VXLAN between the two workers dropped: their pods cannot reach each other"
  "ipv6-no-route|(--ip-family dual) the two workers lose their IPv6 routes to each other's pod CIDR; IPv4 untouched"
  "ipv6-forward-dropped|(--ip-family dual) one worker's host firewall drops forwarded IPv6; IPv4 untouched"
  "ipv6-slow-pair|(--ip-family dual) one node pair 40 ms slower in IPv6; IPv4 untouched"
  "ipv6-throttled-pair|(--ip-family dual) one node pair's IPv6 bandwidth capped; IPv4 untouched"
  "ipv6-outside-unreachable|(--ip-family dual) pods cannot reach the outside host over IPv6; IPv4 untouched"
)
FAULT_NAMES=$(printf '%s\n' "${FAULT_LIST[@]}" | cut -d'|' -f1 | paste -sd' ')
# Where pod traffic between nodes leaves a node: the underlay itself (bridge
# CNI, static routes) or flannel's VXLAN device, whose packets are still the
# pods' own before encapsulation.
pod_uplink() { if [[ $(testbed_cni) == flannel ]]; then echo flannel.1; else echo eth0; fi; }
# The node the single-node faults hit.
FAULT_NODE=${NODES[1]}

# snat: in each family the testbed runs (a masquerading CNI does it to both).
snat_rules() { # add|del
  local uplink; uplink=$(pod_uplink)
  every_node_rule "$1" -t nat POSTROUTING -s "$POD_CIDR" -d "$POD_CIDR" -o "$uplink" \
    -m comment --comment netconform-fault-snat -j MASQUERADE
  every_node_rule6 "$1" -t nat POSTROUTING -s "$POD_CIDR6" -d "$POD_CIDR6" -o "$uplink" \
    -m comment --comment netconform-fault-snat -j MASQUERADE
}
fault_snat() { snat_rules add; }
heal_snat() { snat_rules del; }

# Under either CNI: the bridge's static route or flanneld's route over
# flannel.1 (flanneld adds it when the lease appears, and does not put it
# back). The deleted routes are kept so that heal restores exactly them.
fault_no_route() { # the two workers lose their routes to each other's pod CIDR
  local a=${NODES[1]} b=${NODES[2]} saved="$FAULTS_DIR/.no-route.routes"
  : >"$saved"
  no_route_del "$a" "$(node_pod_cidr "$b")" "$saved"
  no_route_del "$b" "$(node_pod_cidr "$a")" "$saved"
}
no_route_del() { # NODE CIDR SAVED
  local family=-4; [[ $2 == *:* ]] && family=-6
  local route; route=$(in_ns "$1" ip "$family" route show exact "$2")
  [[ -n $route ]] || die "no-route: $1 has no route to $2"
  echo "$1 $family $route" >>"$3"
  in_ns "$1" ip "$family" route del "$2"
}
restore_routes() { # SAVED: puts back exactly the routes no_route_del took
  local n family route
  while read -r n family route; do
    # shellcheck disable=SC2086 # the saved route, word by word
    in_ns "$n" ip "$family" route replace $route
  done <"$1"
  rm -f "$1"
}
heal_no_route() { restore_routes "$FAULTS_DIR/.no-route.routes"; }

# IPv6 only (dual-stack testbed): what an IPv4-only review of a CNI misses.
fault_ipv6_no_route() { # the two workers lose their IPv6 routes to each other's pod CIDR
  local a=${NODES[1]} b=${NODES[2]} saved="$FAULTS_DIR/.ipv6-no-route.routes"
  : >"$saved"
  no_route_del "$a" "$(node_pod_cidr6 "$b")" "$saved"
  no_route_del "$b" "$(node_pod_cidr6 "$a")" "$saved"
}
heal_ipv6_no_route() { restore_routes "$FAULTS_DIR/.ipv6-no-route.routes"; }
# A host firewall whose ip6tables FORWARD policy drops (a common default that
# an IPv4-only review never sees): one worker forwards no IPv6, IPv4 as before.
# (net.ipv6.conf.all.forwarding=0 would be the other way to say it, but this
# kernel, 6.18, forwards IPv6 between a node's interfaces all the same.)
IPV6_FORWARD_DROPPED=(FORWARD -m comment --comment netconform-fault-ipv6-forward-dropped -j DROP)
fault_ipv6_forward_dropped() { FAULT_IPTABLES=ip6tables fault_rule add "$FAULT_NODE" "${IPV6_FORWARD_DROPPED[@]}"; }
heal_ipv6_forward_dropped() { FAULT_IPTABLES=ip6tables fault_rule del "$FAULT_NODE" "${IPV6_FORWARD_DROPPED[@]}"; }

fault_dns_down() { # no DNS server answers (CoreDNS scaled to zero)
  kubectl_admin -n kube-system scale deployment/coredns --replicas=0 >/dev/null
  kubectl_admin -n kube-system wait --for=delete pod -l k8s-app=kube-dns --timeout=60s >/dev/null 2>&1 || true
}
heal_dns_down() {
  kubectl_admin -n kube-system scale deployment/coredns --replicas=2 >/dev/null
  kubectl_admin -n kube-system rollout status deployment/coredns --timeout=120s >/dev/null
}

# A fault's iptables rule, spelled once for both injecting and healing:
# `fault_rule add|del NODE [-t TABLE] CHAIN MATCH...`. `add` inserts it first
# in CHAIN; `del` removes every copy. FAULT_IPTABLES=ip6tables for IPv6.
fault_rule() {
  local op=$1 n=$2 table=() tool=${FAULT_IPTABLES:-iptables}; shift 2
  if [[ $1 == -t ]]; then table=(-t "$2"); shift 2; fi
  local chain=$1; shift
  if [[ $op == add ]]; then
    in_ns "$n" "$tool" "${table[@]}" -I "$chain" 1 "$@"
  else
    while in_ns "$n" "$tool" "${table[@]}" -D "$chain" "$@" 2>/dev/null; do :; done
  fi
}
every_node_rule() { # add|del [-t TABLE] CHAIN MATCH...
  local op=$1 n; shift
  for n in "${NODES[@]}"; do fault_rule "$op" "$n" "$@"; done
}
# every_node_rule6 add|del ...: the IPv6 half of a fault that breaks both
# families, on a dual-stack testbed (nothing on an IPv4 one).
every_node_rule6() { if testbed_dual; then FAULT_IPTABLES=ip6tables every_node_rule "$@"; fi; }

# dns-no-reverse: a Corefile without the in-addr.arpa and ip6.arpa zones, a
# common hand-written one: reverse queries fall to the catch-all block
# (NXDOMAIN), forward lookups answer as before. The Corefile is kept so that
# heal restores exactly it.
fault_dns_no_reverse() { # the cluster DNS has no reverse zones: PTR lookups get NXDOMAIN
  local saved="$FAULTS_DIR/.dns-no-reverse.corefile"
  kubectl_admin -n kube-system get configmap coredns -o jsonpath='{.data.Corefile}' >"$saved"
  grep -q 'in-addr\.arpa' "$saved" || die "the coredns Corefile has no reverse zones to take away"
  sed -e 's/ in-addr\.arpa:53 ip6\.arpa:53 {/ {/' -e 's/ in-addr\.arpa ip6\.arpa {/ {/' "$saved" \
    >"$saved.faulty"
  set_corefile "$saved.faulty"
}
heal_dns_no_reverse() {
  local saved="$FAULTS_DIR/.dns-no-reverse.corefile"
  [[ -f $saved ]] || return 0
  set_corefile "$saved"
  rm -f "$saved" "$saved.faulty"
}
# set_corefile FILE: the coredns ConfigMap's Corefile, and CoreDNS restarted on
# it (the testbed's Corefile has no `reload`).
set_corefile() {
  local patch
  patch=$(python3 -c 'import json, sys; print(json.dumps({"data": {"Corefile": open(sys.argv[1]).read()}}))' "$1")
  kubectl_admin -n kube-system patch configmap coredns --type merge -p "$patch" >/dev/null
  kubectl_admin -n kube-system rollout restart deployment/coredns >/dev/null
  kubectl_admin -n kube-system rollout status deployment/coredns --timeout=120s >/dev/null
}

# dns-tcp-blocked: DNS answers over UDP only. Every node drops forwarded TCP to
# port 53 (after kube-proxy's DNAT that is CoreDNS's pod port), as a firewall
# that lets "DNS" through as UDP/53 does.
DNS_TCP_BLOCKED=(FORWARD -p tcp --dport 53 -m comment --comment netconform-fault-dns-tcp-blocked -j DROP)
fault_dns_tcp_blocked() { every_node_rule add "${DNS_TCP_BLOCKED[@]}"; }
heal_dns_tcp_blocked() { every_node_rule del "${DNS_TCP_BLOCKED[@]}"; }

# outside-unreachable: every node drops what pods send to the outside host;
# traffic inside the cluster is untouched.
OUTSIDE_UNREACHABLE=(FORWARD -s "$POD_CIDR" -d "$OUTSIDE_IP" -m comment --comment netconform-fault-outside-unreachable -j DROP)
fault_outside_unreachable() { every_node_rule add "${OUTSIDE_UNREACHABLE[@]}"; }
heal_outside_unreachable() { every_node_rule del "${OUTSIDE_UNREACHABLE[@]}"; }

# outside-foreign-snat: every node SNATs what pods send to the outside host to
# a second address of its own (10.250.0.20<i>), neither the pod's IP nor the
# node's InternalIP: the connection works, the source the outside host sees is
# one the cluster does not account for.
foreign_snat_ip() { echo "10.250.0.20$1"; }
outside_foreign_snat_rule() { # add|del NODE_INDEX
  local i=$2
  fault_rule "$1" "${NODES[$i]}" -t nat POSTROUTING -s "$POD_CIDR" -d "$OUTSIDE_IP" \
    -m comment --comment netconform-fault-outside-foreign-snat -j SNAT --to-source "$(foreign_snat_ip "$i")"
}
fault_outside_foreign_snat() {
  local i
  for i in "${!NODES[@]}"; do
    in_ns "${NODES[$i]}" ip addr add "$(foreign_snat_ip "$i")/$NODE_PREFIX" dev eth0
    outside_foreign_snat_rule add "$i"
  done
}
heal_outside_foreign_snat() {
  local i
  for i in "${!NODES[@]}"; do
    outside_foreign_snat_rule del "$i"
    in_ns "${NODES[$i]}" ip addr del "$(foreign_snat_ip "$i")/$NODE_PREFIX" dev eth0 2>/dev/null || true
  done
}

# icmp-blocked: every node drops forwarded ICMP echo requests (pod to pod, on
# one node through the bridge and across nodes), in each family the testbed
# runs; TCP and UDP are untouched (and ICMPv6 neighbour discovery with them).
ICMP_BLOCKED=(FORWARD -p icmp --icmp-type echo-request -m comment --comment netconform-fault-icmp-blocked -j DROP)
ICMP_BLOCKED6=(FORWARD -p ipv6-icmp --icmpv6-type echo-request -m comment --comment netconform-fault-icmp-blocked -j DROP)
# vxlan-blocked: the overlay's own failure. Each worker drops the other's
# VXLAN datagrams (UDP 8472, flannel's port); the nodes still reach each
# other, so only pod traffic between the two workers breaks.
vxlan_blocked_rule() { # add|del NODE FROM
  fault_rule "$1" "$2" INPUT -p udp --dport 8472 -s "${NODE_IP[$3]}" -m comment --comment netconform-fault-vxlan-blocked -j DROP
}
fault_vxlan_blocked() {
  vxlan_blocked_rule add "${NODES[1]}" "${NODES[2]}"
  vxlan_blocked_rule add "${NODES[2]}" "${NODES[1]}"
}
heal_vxlan_blocked() {
  vxlan_blocked_rule del "${NODES[1]}" "${NODES[2]}"
  vxlan_blocked_rule del "${NODES[2]}" "${NODES[1]}"
}

fault_icmp_blocked() {
  every_node_rule add "${ICMP_BLOCKED[@]}"
  every_node_rule6 add "${ICMP_BLOCKED6[@]}"
}
heal_icmp_blocked() {
  every_node_rule del "${ICMP_BLOCKED[@]}"
  every_node_rule6 del "${ICMP_BLOCKED6[@]}"
}

# apiserver-from-pods-blocked: the control-plane node drops TCP from pod
# addresses to the API server's port (nodes and kubelets still reach it; CoreDNS
# keeps answering from its cache for the fault's short life).
APISERVER_FROM_PODS_BLOCKED=(INPUT -s "$POD_CIDR" -p tcp --dport 6443
  -m comment --comment netconform-fault-apiserver-from-pods-blocked -j DROP)
fault_apiserver_from_pods_blocked() { fault_rule add "${NODES[0]}" "${APISERVER_FROM_PODS_BLOCKED[@]}"; }
heal_apiserver_from_pods_blocked() { fault_rule del "${NODES[0]}" "${APISERVER_FROM_PODS_BLOCKED[@]}"; }

# affinity-ignored: kube-proxy on one node (where the cluster-ip scenario's
# client runs) programs every Service rule but its ClientIP-affinity ones (the
# `recent --rcheck` matches that send a known client back to its backend): it
# is restarted with an iptables-restore on its PATH that drops those lines.
# Services still answer there, spread at random. Both families: kube-proxy
# programs IPv6 through ip6tables-restore.
fault_affinity_ignored() {
  local dir="$NC_STATE/faults-bin/affinity-ignored" tool
  mkdir -p "$dir"
  for tool in iptables-restore ip6tables-restore; do
    printf '#!/bin/sh\nsed "/--rcheck/d" | exec %s "$@"\n' "$(command -v "$tool")" >"$dir/$tool"
    chmod +x "$dir/$tool"
  done
  stop_kube_proxy "$FAULT_NODE"
  start_kube_proxy "$FAULT_NODE" "$dir"
}
stop_kube_proxy() {
  local pid
  if pid=$(recorded_pid "$1-kube-proxy"); then
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
}
heal_affinity_ignored() {
  stop_kube_proxy "$FAULT_NODE"
  start_kube_proxy "$FAULT_NODE"
}

# filtered_kube_proxy HIDE: kube-proxy on the fault node restarted to reach the
# API server through netconform-api-filter, which hides HIDE from it (see
# testbed/api-filter). Everything else it reads passes as usual.
API_FILTER_LISTEN=127.0.0.1:16443
filtered_kube_proxy() {
  local kc="$NC_STATE/faults-bin/api-filter.kubeconfig"
  mkdir -p "$NC_STATE/faults-bin"
  cat >"$kc" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: filtered, cluster: {server: "http://$API_FILTER_LISTEN"}}]
users: [{name: kube-proxy, user: {}}]
contexts: [{name: filtered, context: {cluster: filtered, user: kube-proxy}}]
current-context: filtered
EOF
  start_node_proc "$FAULT_NODE" "$FAULT_NODE-api-filter" ip netns exec "$FAULT_NODE" \
    "$API_FILTER_BIN" --kubeconfig "$PKI/kube-proxy.kubeconfig" --listen "$API_FILTER_LISTEN" --hide "$1"
  wait_for "the API filter on $FAULT_NODE" 10 in_ns "$FAULT_NODE" bash -c "echo >/dev/tcp/${API_FILTER_LISTEN/://}"
  stop_kube_proxy "$FAULT_NODE"
  start_kube_proxy "$FAULT_NODE" "" "$kc"
}
unfiltered_kube_proxy() {
  stop_kube_proxy "$FAULT_NODE"
  start_kube_proxy "$FAULT_NODE"
  stop_recorded "$FAULT_NODE-api-filter"
}

# service-stale-updates: that kube-proxy never sees a Service update: it
# programs new Services and forgets deleted ones, but keeps each Service as it
# first saw it (a type change or session affinity switched in place never
# reaches it).
fault_service_stale_updates() { filtered_kube_proxy service-updates; }
heal_service_stale_updates() { unfiltered_kube_proxy; }

# endpoint-slices-first-only: that kube-proxy sees one EndpointSlice per
# Service and family (the first: the lowest name in its first list), so the
# endpoints of a Service's other slices of that family are missing there.
# Services with one slice per family (every selector Service of fewer than
# 100 pods) are untouched, on a dual-stack testbed too.
fault_endpoint_slices_first_only() { filtered_kube_proxy extra-endpoint-slices; }
heal_endpoint_slices_first_only() { unfiltered_kube_proxy; }

# hostport-off: every node's portmap DNAT chain (one per family) returns
# before any pod's rule, so hostPorts lead nowhere; NodePorts and Services
# (kube-proxy's chains) are untouched. portmap only appends to the chain, so
# pods created later are caught too.
HOSTPORT_OFF=(-t nat CNI-HOSTPORT-DNAT -m comment --comment netconform-fault-hostport-off -j RETURN)
fault_hostport_off() {
  local n
  for n in "${NODES[@]}"; do
    in_ns "$n" iptables -t nat -N CNI-HOSTPORT-DNAT 2>/dev/null || true
    if testbed_dual; then in_ns "$n" ip6tables -t nat -N CNI-HOSTPORT-DNAT 2>/dev/null || true; fi
  done
  every_node_rule add "${HOSTPORT_OFF[@]}"
  every_node_rule6 add "${HOSTPORT_OFF[@]}"
}
heal_hostport_off() {
  every_node_rule del "${HOSTPORT_OFF[@]}"
  every_node_rule6 del "${HOSTPORT_OFF[@]}"
}

# hostport-ignores-host-ip: the portmap plugin runs with the pods' hostIPs
# taken out of its port mappings, so a hostPort bound to one address of its
# node (127.0.0.1, say) answers on all of them. The testbed's CNI bin
# directory gets a wrapper in place of its portmap link; pods created after
# the fault are affected.
fault_hostport_ignores_host_ip() {
  local real; real=$(readlink -f "$CNI_BIN/portmap")
  [[ -x $real && $real != "$CNI_BIN/portmap" ]] || die "no portmap plugin link in $CNI_BIN"
  mkdir -p "$NC_STATE/faults-bin"
  echo "$real" >"$NC_STATE/faults-bin/portmap.real"
  rm -f "$CNI_BIN/portmap"
  # libcni writes compact JSON, containerd's keys capitalised (`"HostIP"`):
  # `,"HostIP":"..."` or `"HostIP":"...",`, matched in any case.
  cat >"$CNI_BIN/portmap" <<EOF
#!/bin/sh
sed -e 's/,"hostIP":"[^"]*"//gI' -e 's/"hostIP":"[^"]*",\{0,1\}//gI' | exec $real "\$@"
EOF
  chmod +x "$CNI_BIN/portmap"
}
heal_hostport_ignores_host_ip() {
  local real; real=$(cat "$NC_STATE/faults-bin/portmap.real")
  rm -f "$CNI_BIN/portmap"
  ln -s "$real" "$CNI_BIN/portmap"
}

# hairpin-off: the bridge CNI configured without hairpinMode (a common slip):
# a pod that reaches itself through its own Service sends a frame the node's
# bridge will not send back out of the port it came in on. Every node's CNI
# config says so for new pods, and every port already on the bridge is
# switched too; other traffic is untouched.
hairpin_mode() { # on|off
  local n port flag=false
  [[ $1 == on ]] && flag=true
  for n in "${NODES[@]}"; do
    sed -i "s/\"hairpinMode\": [a-z]*/\"hairpinMode\": $flag/" "$(node_dir "$n")/cni/net.d/10-netconform.conflist"
    for port in $(in_ns "$n" ls /sys/class/net/cni0/brif 2>/dev/null); do
      in_ns "$n" bridge link set dev "$port" hairpin "$1"
    done
  done
}
fault_hairpin_off() { hairpin_mode off; }
heal_hairpin_off() { hairpin_mode on; }

fault_service_rules_off() { # kube-proxy stopped on one node and its Service rules flushed
  stop_kube_proxy "$FAULT_NODE"
  in_ns "$FAULT_NODE" iptables -t nat -F KUBE-SERVICES
  if testbed_dual; then in_ns "$FAULT_NODE" ip6tables -t nat -F KUBE-SERVICES; fi
}
heal_service_rules_off() { start_kube_proxy "$FAULT_NODE"; }

fault_netpol_off() { # the NetworkPolicy enforcers stopped (they remove their rules on exit)
  local n pid
  for n in "${NODES[@]}"; do
    if pid=$(recorded_pid "$n-netpol"); then
      kill -TERM "$pid"
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
  done
}
heal_netpol_off() {
  local n
  for n in "${NODES[@]}"; do start_netpol "$n"; done
}

# netpol-stale-updates: every enforcer restarted with --ignore-updates: it
# follows new and deleted pods, namespaces and policies, but keeps the labels
# and policy specs it first saw (an enforcer that handles add and delete
# events, not updates).
restart_netpol() { # [ENFORCER ARGS...]
  local n
  fault_netpol_off
  for n in "${NODES[@]}"; do start_netpol "$n" "$@"; done
}
fault_netpol_stale_updates() { restart_netpol --ignore-updates; }
heal_netpol_stale_updates() { restart_netpol; }

fault_mtu() { # one worker's uplink MTU drops below the pods' 1500 (an overlay's mistake)
  in_ns "$FAULT_NODE" ip link set eth0 mtu 1300
}
heal_mtu() { in_ns "$FAULT_NODE" ip link set eth0 mtu 1500; }

# slow-pair: every packet from netconform-worker to netconform-worker2's pods is
# held 40 ms by netconform-delay (NFQUEUE; this kernel has no netem), so each
# round trip between the two workers' pods, in either direction, takes 40 ms
# more. Nothing else is slowed; nothing is dropped.
SLOW_PAIR_DELAY_MS=40
# slow_pair_start|slow_pair_stop IPTABLES POD_CIDR QUEUE NAME: the rule and
# the delay process of one family (each its own queue and process, so the
# IPv4 and IPv6 faults can be told apart and healed apart).
slow_pair_rule() {
  local op=$1 tool=$2 cidr=$3 queue=$4 name=$5 uplink; uplink=$(pod_uplink)
  in_ns "${NODES[1]}" "$tool" -t mangle "$op" POSTROUTING -o "$uplink" -d "$cidr" \
    -m comment --comment "netconform-fault-$name" -j NFQUEUE --queue-num "$queue" --queue-bypass
}
slow_pair_start() {
  local tool=$1 cidr=$2 queue=$3 name=$4 a=${NODES[1]}
  [[ -x $DELAY_BIN ]] || build_netpol
  start_proc "$a-$name" ip netns exec "$a" "$DELAY_BIN" --queue "$queue" --delay-ms "$SLOW_PAIR_DELAY_MS" --max-seconds 1800
  slow_pair_rule -I "$tool" "$cidr" "$queue" "$name"
}
slow_pair_stop() {
  local tool=$1 cidr=$2 queue=$3 name=$4 a=${NODES[1]} pid
  while slow_pair_rule -D "$tool" "$cidr" "$queue" "$name" 2>/dev/null; do :; done
  if pid=$(recorded_pid "$a-$name"); then
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$PIDS/$a-$name.pid"
}
fault_slow_pair() { slow_pair_start iptables "$(node_pod_cidr "${NODES[2]}")" 42 slow-pair; }
heal_slow_pair() { slow_pair_stop iptables "$(node_pod_cidr "${NODES[2]}")" 42 slow-pair; }
# ipv6-slow-pair: the same 40 ms in IPv6 alone (ip6tables, the IPv6 pod CIDR).
fault_ipv6_slow_pair() { slow_pair_start ip6tables "$(node_pod_cidr6 "${NODES[2]}")" 43 ipv6-slow-pair; }
heal_ipv6_slow_pair() { slow_pair_stop ip6tables "$(node_pod_cidr6 "${NODES[2]}")" 43 ipv6-slow-pair; }

# throttled-pair: what netconform-worker sends to netconform-worker2's pods is
# shaped to 20 Mbit/s (HTB on its uplink; everything else goes through an
# unshaped 40 Gbit/s class). Small packets are not held back: latency and
# every functional check stay as they were, only a stream between the two
# workers' pods (either direction, its echo crosses the shaped way) is slow.
THROTTLED_PAIR_RATE=20mbit
# throttled_pair_start PROTOCOL MATCH POD_CIDR: the shaping, its filter for
# one family only (tc's u32 "ip" or "ip6" match; the other family's traffic
# goes through the unshaped class).
throttled_pair_start() {
  local protocol=$1 match=$2 cidr=$3 a=${NODES[1]} uplink; uplink=$(pod_uplink)
  in_ns "$a" tc qdisc add dev "$uplink" root handle 1: htb default 10
  in_ns "$a" tc class add dev "$uplink" parent 1: classid 1:10 htb rate 40gbit burst 1m quantum 60000
  in_ns "$a" tc class add dev "$uplink" parent 1: classid 1:20 htb rate "$THROTTLED_PAIR_RATE" ceil "$THROTTLED_PAIR_RATE" burst 32k quantum 60000
  in_ns "$a" tc filter add dev "$uplink" parent 1: protocol "$protocol" prio 1 u32 match "$match" dst "$cidr" flowid 1:20
}
throttled_pair_stop() { in_ns "${NODES[1]}" tc qdisc del dev "$(pod_uplink)" root 2>/dev/null || true; }
fault_throttled_pair() { throttled_pair_start ip ip "$(node_pod_cidr "${NODES[2]}")"; }
heal_throttled_pair() { throttled_pair_stop; }
# ipv6-throttled-pair: the same cap in IPv6 alone.
# ipv6-outside-unreachable: outside-unreachable for the outside host's IPv6
# address alone (an IPv6 egress path a cluster forgot: no route, no NAT66).
IPV6_OUTSIDE_UNREACHABLE=(FORWARD -s "$POD_CIDR6" -d "$OUTSIDE_IP6" -m comment --comment netconform-fault-ipv6-outside-unreachable -j DROP)
fault_ipv6_outside_unreachable() { FAULT_IPTABLES=ip6tables every_node_rule add "${IPV6_OUTSIDE_UNREACHABLE[@]}"; }
heal_ipv6_outside_unreachable() { FAULT_IPTABLES=ip6tables every_node_rule del "${IPV6_OUTSIDE_UNREACHABLE[@]}"; }

fault_ipv6_throttled_pair() { throttled_pair_start ipv6 ip6 "$(node_pod_cidr6 "${NODES[2]}")"; }
heal_ipv6_throttled_pair() { throttled_pair_stop; }

# Why fault $1 cannot be injected on this testbed (it breaks something the
# testbed does not run); prints nothing when it can. The fault tests ask this
# too (fault --applies), so the rule lives here only.
fault_not_applicable() {
  if [[ $1 == vxlan-blocked && $(testbed_cni) != flannel ]]; then
    echo "it breaks an overlay, and this testbed runs --cni $(testbed_cni)"
  elif [[ $1 == hairpin-off && $(testbed_cni) != bridge ]]; then
    echo "it changes the bridge CNI's config, and this testbed runs --cni $(testbed_cni)"
  elif [[ $1 == netpol-* && $(testbed_netpol) == none ]]; then
    echo "it breaks the NetworkPolicy enforcer, and this testbed runs --netpol none"
  elif [[ $1 == ipv6-* ]] && ! testbed_dual; then
    echo "it breaks IPv6, and this testbed runs --ip-family $(testbed_ip_family)"
  fi
}

require_known_fault() {
  [[ " $FAULT_NAMES " == *" $1 "* ]] || die "unknown fault '$1' (testbed fault --list: $FAULT_NAMES)"
}

cmd_fault() {
  local name=${1:-} f reason
  if [[ $name == --list ]]; then
    for f in "${FAULT_LIST[@]}"; do printf '%-28s %s\n' "${f%%|*}" "${f#*|}"; done
    return 0
  fi
  if [[ $name == --applies ]]; then
    name=${2:-}
    require_known_fault "$name"
    reason=$(fault_not_applicable "$name")
    [[ -z $reason ]] || { echo "$reason"; return 3; }
    return 0
  fi
  require_root
  require_known_fault "$name"
  [[ -f $KUBECONFIG_OUT ]] || die "the testbed is not up"
  reason=$(fault_not_applicable "$name")
  [[ -z $reason ]] || die "fault $name cannot be injected here: $reason"
  mkdir -p "$FAULTS_DIR"
  if [[ -f $FAULTS_DIR/$name ]]; then
    log "fault $name is already active"
    return 0
  fi
  "fault_${name//-/_}"
  touch "$FAULTS_DIR/$name"
  log "fault $name injected (testbed/testbed heal undoes it)"
}

cmd_heal() {
  local f name
  for f in "$FAULTS_DIR"/*; do
    [[ -f $f ]] || continue
    name=$(basename "$f")
    "heal_${name//-/_}"
    rm -f "$f"
    log "fault $name healed"
  done
}
