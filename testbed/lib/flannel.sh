# shellcheck shell=bash
# `up --cni flannel`: flanneld (VXLAN, Kubernetes subnet manager) on every node
# instead of the testbed's static pod-CIDR routes.
#
# Pods still attach through the bridge plugin: flannel's own CNI plugin
# (flannel-io/cni-plugin) is not on the Go module proxy, and all it does is
# hand bridge + host-local the subnet and MTU from flanneld's subnet file,
# which write_cni_config_flannel does here from the same file.

FLANNELD="$NC_CACHE/flannel-$FLANNEL_VERSION/bin/flanneld"

# build_flannel: flanneld at $FLANNEL_VERSION, static. Its main package imports
# the tencentvpc backend (whose SDK the proxy does not serve) and the udp
# backend (cgo on amd64): a throw-away module carries a copy of main.go without
# those two imports and takes everything else from the flannel module.
build_flannel() {
  local out="$NC_CACHE/flannel-$FLANNEL_VERSION"
  if [[ -f $out/.complete ]]; then
    log "flannel $FLANNEL_VERSION: cached in $out"
    return 0
  fi
  local work="$NC_CACHE/src/flannel-$FLANNEL_VERSION" dir
  mkdir -p "$work" "$out/bin"
  log "flannel $FLANNEL_VERSION: fetching module (Go module proxy)"
  dir=$(cd "$work" && go mod download -json "github.com/flannel-io/flannel@$FLANNEL_VERSION" |
    sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  [[ -f $dir/main.go ]] || die "could not download github.com/flannel-io/flannel@$FLANNEL_VERSION"
  grep -v -e '"github.com/flannel-io/flannel/pkg/backend/tencentvpc"' \
    -e '"github.com/flannel-io/flannel/pkg/backend/udp"' "$dir/main.go" >"$work/main.go"
  printf 'module netconform.local/testbed-flannel\n\ngo %s\n\nrequire github.com/flannel-io/flannel %s\n' \
    "$(sed -n 's/^go //p' "$dir/go.mod")" "$FLANNEL_VERSION" >"$work/go.mod"
  log "flannel $FLANNEL_VERSION: building flanneld"
  (cd "$work" && go mod tidy && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/flannel-io/flannel/pkg/version.Version=$FLANNEL_VERSION" -o "$out/bin/flanneld" .) ||
    die "building flanneld failed (see output above)"
  touch "$out/.complete"
  log "flannel $FLANNEL_VERSION: built into $out/bin"
}

# apply_flannel_rbac: what flanneld's Kubernetes subnet manager reads and
# writes (its upstream manifest's ClusterRole, without the pods it reads
# only when it runs in one).
apply_flannel_rbac() {
  kubectl_admin apply -f - >/dev/null <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "netconform:flannel"}
rules:
- {apiGroups: [""], resources: [nodes], verbs: [get, list, watch]}
- {apiGroups: [""], resources: [nodes/status], verbs: [patch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "netconform:flannel"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "netconform:flannel"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "netconform:flannel"}
EOF
}

# start_flannel NODE: flanneld in the node's namespace. VXLAN over eth0 (nodes
# have no default route to pick an interface by), no masquerade of pod
# traffic, and no FORWARD accept rules of its own: they would accept pod
# traffic before the NetworkPolicy enforcer's chain sees it.
start_flannel() {
  local n=$1 d; d=$(node_dir "$n")/flannel
  mkdir -p "$d"
  write_if_changed "$d/net-conf.json" <<EOF
{"Network": "$POD_CIDR", "SubnetLen": 24, "Backend": {"Type": "vxlan"}}
EOF
  start_node_proc "$n" "$n-flanneld" env NODE_NAME="$n" ip netns exec "$n" "$FLANNELD" \
    --kube-subnet-mgr --kubeconfig-file "$PKI/flannel.kubeconfig" --iface eth0 \
    --net-config-path "$d/net-conf.json" --subnet-file "$d/subnet.env" \
    --ip-masq=false --iptables-forward-rules=false
}

# flannel_subnet_var NODE VAR: a value from the node's flanneld subnet file.
flannel_subnet_var() { sed -n "s/^$2=//p" "$(node_dir "$1")/flannel/subnet.env" 2>/dev/null; }

# write_cni_config_flannel NODE: the node's bridge network (write_cni_config)
# over the subnet flanneld leased to it, which must be its pod CIDR, at the MTU
# flanneld computed (the uplink's less VXLAN's 50 bytes).
write_cni_config_flannel() {
  local n=$1 subnet mtu network
  subnet=$(flannel_subnet_var "$n" FLANNEL_SUBNET) mtu=$(flannel_subnet_var "$n" FLANNEL_MTU)
  [[ -n $subnet && -n $mtu ]] || die "flanneld on $n wrote no subnet file (log: $LOGS/$n-flanneld.log)"
  # FLANNEL_SUBNET is the bridge's gateway address with the lease's prefix.
  network=$(node_pod_cidr "$n")
  [[ $subnet == "${network%.*}.1/${network#*/}" ]] ||
    die "flanneld leased $subnet to $n, but its pod CIDR is $network (log: $LOGS/$n-flanneld.log)"
  write_cni_config "$n" "$mtu"
}
