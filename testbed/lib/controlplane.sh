# shellcheck shell=bash
# The control plane, as plain processes in the control-plane node's network
# namespace: etcd (Debian's), kube-apiserver, kube-controller-manager, kube-scheduler.

# Each node's pod CIDR: a /24 of IPv4 (and a /64 of IPv6). The per-family
# flags are refused on a single-stack cluster CIDR.
node_cidr_mask_flags() {
  if testbed_dual; then
    echo "--node-cidr-mask-size-ipv4 24 --node-cidr-mask-size-ipv6 64"
  else
    echo "--node-cidr-mask-size 24"
  fi
}

start_control_plane() {
  local cp=$CONTROL_PLANE cp_ip=${NODE_IP[$CONTROL_PLANE]}
  mkdir -p "$NC_STATE/etcd"
  start_node_proc "$cp" etcd ip netns exec "$cp" etcd --name testbed --data-dir "$NC_STATE/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster testbed=http://127.0.0.1:2380
  wait_for etcd 30 in_ns "$cp" bash -c 'exec 3<>/dev/tcp/127.0.0.1/2379'

  start_node_proc "$cp" kube-apiserver ip netns exec "$cp" "$BIN/kube-apiserver" \
    --etcd-servers http://127.0.0.1:2379 \
    --advertise-address "$cp_ip" --bind-address 0.0.0.0 --secure-port 6443 \
    --service-cluster-ip-range "$(service_cidrs)" \
    --client-ca-file "$PKI/ca.crt" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-account-issuer "https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --allow-privileged=true --profiling=false --v=1
  wait_for kube-apiserver 90 kubectl_admin get --raw /readyz

  start_node_proc "$cp" kube-controller-manager ip netns exec "$cp" "$BIN/kube-controller-manager" \
    --kubeconfig "$PKI/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$PKI/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$PKI/controller-manager.kubeconfig" \
    --allocate-node-cidrs --cluster-cidr "$(pod_cidrs)" $(node_cidr_mask_flags) \
    --service-cluster-ip-range "$(service_cidrs)" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --root-ca-file "$PKI/ca.crt" --service-account-private-key-file "$PKI/sa.key" \
    --use-service-account-credentials --leader-elect=false --bind-address 127.0.0.1 --v=1

  start_node_proc "$cp" kube-scheduler ip netns exec "$cp" "$BIN/kube-scheduler" \
    --kubeconfig "$PKI/scheduler.kubeconfig" \
    --authentication-kubeconfig "$PKI/scheduler.kubeconfig" \
    --authorization-kubeconfig "$PKI/scheduler.kubeconfig" \
    --leader-elect=false --bind-address 127.0.0.1 --v=1
}
