# shellcheck shell=bash
# One node: its mount-namespace holder, containerd, imported images, kubelet,
# and (once the node has a pod CIDR) its CNI config and kube-proxy.

holder_pid() { recorded_pid "$1-holder"; }
# in_node NODE CMD...: runs CMD in the node's network and mount namespaces.
in_node() { local n=$1; shift; nsenter -t "$(holder_pid "$n")" -m -n -- "$@"; }
node_ctr() { local n=$1; shift; in_node "$n" ctr --address "$(node_dir "$n")/containerd.sock" -n k8s.io "$@"; }

write_containerd_config() {
  local n=$1 d; d=$(node_dir "$n")
  write_if_changed "$d/containerd.toml" <<EOF
version = 2
root = "$d/containerd/root"
state = "$d/containerd/state"
[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # The VM's bounding set lacks CAP_SYS_RESOURCE: never lower oom_score_adj.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$d/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$d/cni/net.d"
EOF
}

write_kubelet_config() {
  local n=$1 d; d=$(node_dir "$n")
  # Pods with dnsPolicy Default get this file: it names only the cluster's own
  # DNS, so no query leaves the machine.
  echo "nameserver $DNS_IP" >"$d/resolv.conf"
  {
  cat <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: ${NODE_IP[$n]}
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: AlwaysAllow}
tlsCertFile: $PKI/node-$n.crt
tlsPrivateKeyFile: $PKI/node-$n.key
cgroupDriver: cgroupfs
cgroupRoot: /$(node_cgroup "$n")
clusterDNS: [$DNS_IP]
clusterDomain: $CLUSTER_DOMAIN
containerRuntimeEndpoint: unix://$d/containerd.sock
resolvConf: $d/resolv.conf
failSwapOn: false
oomScoreAdj: 0
serializeImagePulls: false
# Never garbage-collect the locally imported images: nothing can pull them back.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
EOF
  # Like kind: the control plane runs no workloads (tainted from its first moment).
  if [[ $n == "$CONTROL_PLANE" ]]; then
    printf 'registerWithTaints:\n- {key: node-role.kubernetes.io/control-plane, effect: NoSchedule}\n'
  fi
  } | write_if_changed "$d/kubelet.yaml"
}

# The CNI plugins containerd runs: Debian's, with `bridge` wrapped so that a
# pod's new address starts with no neighbour entry on the node. host-local
# hands addresses out again once a node's range wraps, and the node still
# remembers the previous pod's MAC for that address (the kernel keeps STALE
# entries while the table is small): traffic routed to the new pod went to a
# MAC that no longer exists, for the ~8 s of DELAY and PROBE, then failed with
# EHOSTUNREACH. The same bug is open upstream (containernetworking/plugins
# issue 858); docs/verdicts.md has the reproduction.
CNI_BIN="$NC_STATE/cni-bin"
install_cni_plugins() {
  mkdir -p "$CNI_BIN"
  local p
  for p in /usr/lib/cni/*; do
    [[ $(basename "$p") == bridge ]] || ln -sf "$p" "$CNI_BIN/"
  done
  write_if_changed "$CNI_BIN/bridge" <<'WRAPPER'
#!/usr/bin/env bash
# Debian's bridge plugin, then (ADD) the node forgets any MAC it remembers for
# the pod's new address(es), so the first packet to them resolves afresh.
set -o pipefail
config=$(cat)
result=$(/usr/lib/cni/bridge <<<"$config")
rc=$?
if ((rc == 0)) && [[ ${CNI_COMMAND:-} == ADD ]]; then
  bridge=$(grep -o '"bridge": *"[^"]*"' <<<"$config" | head -1 | sed 's/.*"\([^"]*\)"$/\1/')
  for address in $(grep -o '"address": *"[0-9a-f.:]*/' <<<"$result" | sed 's/.*"\([^"/]*\)\/$/\1/'); do
    ip neigh del "$address" dev "${bridge:-cni0}" 2>/dev/null || true
  done
fi
printf '%s' "$result"
exit $rc
WRAPPER
  chmod +x "$CNI_BIN/bridge"
}

start_node_runtime() {
  local n=$1 d; d=$(node_dir "$n")
  mkdir -p "$d/cni/net.d" "$d/kubelet"
  if ! pid_alive "$n-holder"; then
    rm -f "$d/holder-ready"
    start_proc "$n-holder" ip netns exec "$n" unshare -m --propagation private -- \
      bash "$TESTBED_DIR/lib/node-ns.sh" "$d" "$(node_cgroup "$n")"
    wait_for "$n mount namespace" 20 test -f "$d/holder-ready"
  fi
  install_cni_plugins
  write_containerd_config "$n"
  # NETCONFORM_TESTBED_RUNTIME_DEBUG=1: containerd logs every exec's start,
  # exit and end of output piping (read when an exec's output goes missing).
  start_node_proc "$n" "$n-containerd" nsenter -t "$(holder_pid "$n")" -m -n -- containerd --config "$d/containerd.toml" \
    ${NETCONFORM_TESTBED_RUNTIME_DEBUG:+--log-level debug}
  wait_for "$n containerd" 30 node_ctr "$n" version
  local archive
  for archive in "${IMAGE_ARCHIVES[@]}"; do
    node_ctr "$n" images import --digests "$archive" >/dev/null || die "importing $archive into $n failed"
  done
  write_kubelet_config "$n"
  start_node_proc "$n" "$n-kubelet" nsenter -t "$(holder_pid "$n")" -m -n -- "$BIN/kubelet" \
    --config "$d/kubelet.yaml" --kubeconfig "$PKI/node-$n.kubeconfig" \
    --root-dir "$d/kubelet" --hostname-override "$n" --node-ip "$(node_ips "$n")" --v=1
}

# write_cni_config NODE [MTU]: the node's bridge network over the pod CIDR the
# controller manager assigned; no masquerade, so pods see each other's real IPs.
# MTU: the pods' (an overlay's, e.g. flannel's 1450); default the uplink's.
write_cni_config() {
  local n=$1 d cidr mtu_line="" ranges routes; d=$(node_dir "$n"); cidr=$(node_pod_cidr "$n")
  [[ -n $cidr ]] || die "node $n has no pod CIDR"
  ranges='[{"subnet": "'"$cidr"'"}]' routes='{"dst": "0.0.0.0/0"}'
  if testbed_dual; then
    local cidr6; cidr6=$(node_pod_cidr6 "$n")
    [[ -n $cidr6 ]] || die "node $n has no IPv6 pod CIDR (spec.podCIDRs)"
    ranges+=', [{"subnet": "'"$cidr6"'"}]' routes+=', {"dst": "::/0"}'
  fi
  [[ -z ${2:-} ]] || mtu_line=$'\n      "mtu": '"$2"','
  write_if_changed "$d/cni/net.d/10-netconform.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "netconform",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,$mtu_line
      "ipam": {
        "type": "host-local",
        "ranges": [$ranges],
        "routes": [$routes],
        "dataDir": "$d/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

start_kube_proxy() { # NODE [PATH_PREFIX] [KUBECONFIG]
  local n=$1 d; d=$(node_dir "$n")
  # $3: another way to the API server (a fault's filtering proxy).
  local kubeconfig=${3:-$PKI/kube-proxy.kubeconfig}
  write_if_changed "$d/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $kubeconfig}
mode: iptables
clusterCIDR: $(pod_cidrs)
hostnameOverride: $n
bindAddress: ${NODE_IP[$n]}
oomScoreAdj: 0
# Leave the netns' conntrack sizing alone (the module parameters are global).
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
metricsBindAddress: 127.0.0.1:10249
EOF
  # $2: a directory put first on kube-proxy's PATH (a fault's iptables-restore wrapper).
  start_node_proc "$n" "$n-kube-proxy" env PATH="${2:+$2:}$PATH" ip netns exec "$n" "$BIN/kube-proxy" --config "$d/kube-proxy.yaml" --v=1
}
