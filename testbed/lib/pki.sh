# shellcheck shell=bash
# The testbed's PKI: one CA, one certificate per component, and the kubeconfigs.
# Made once per `up` from nothing; `down` removes it with the rest of the state.

# issue_cert NAME SUBJECT [SANS]: a key and a CA-signed certificate in $PKI.
issue_cert() {
  local name=$1 subj=$2 sans=${3:-}
  [[ -f $PKI/$name.crt ]] && return 0
  openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=serverAuth,clientAuth"
    [[ -n $sans ]] && echo "subjectAltName=$sans"
  } >"$PKI/$name.ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 365 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

# write_kubeconfig FILE CERT_NAME: a kubeconfig for the API server with a client cert.
write_kubeconfig() {
  local file=$1 cert=$2
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $CLUSTER_NAME
  cluster:
    server: $APISERVER_URL
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: $cert
  user:
    client-certificate-data: $(base64 -w0 <"$PKI/$cert.crt")
    client-key-data: $(base64 -w0 <"$PKI/$cert.key")
contexts:
- name: $CLUSTER_NAME
  context:
    cluster: $CLUSTER_NAME
    user: $cert
current-context: $CLUSTER_NAME
EOF
  chmod 600 "$file"
}

make_pki() {
  mkdir -p "$PKI"
  if [[ ! -f $PKI/ca.crt ]]; then
    openssl genrsa -out "$PKI/ca.key" 2048 2>/dev/null
    openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=netconform-testbed-ca" -days 365 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out "$PKI/ca.crt" 2>/dev/null
  fi
  local cp_ip=${NODE_IP[$CONTROL_PLANE]}
  issue_cert apiserver "/CN=kube-apiserver" \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN,DNS:localhost,IP:$KUBERNETES_SVC_IP,IP:$cp_ip,IP:127.0.0.1"
  issue_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  issue_cert admin "/O=system:masters/CN=netconform-admin"
  issue_cert controller-manager "/CN=system:kube-controller-manager"
  issue_cert scheduler "/CN=system:kube-scheduler"
  issue_cert kube-proxy "/CN=system:kube-proxy"
  issue_cert netpol "/CN=netconform:netpol"
  issue_cert flannel "/CN=netconform:flannel"
  local n
  for n in "${NODES[@]}"; do
    issue_cert "node-$n" "/O=system:nodes/CN=system:node:$n" "DNS:$n,IP:${NODE_IP[$n]}"
  done
  [[ -f $PKI/sa.key ]] || {
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  }

  write_kubeconfig "$KUBECONFIG_OUT" admin
  write_kubeconfig "$PKI/controller-manager.kubeconfig" controller-manager
  write_kubeconfig "$PKI/scheduler.kubeconfig" scheduler
  write_kubeconfig "$PKI/kube-proxy.kubeconfig" kube-proxy
  write_kubeconfig "$PKI/netpol.kubeconfig" netpol
  write_kubeconfig "$PKI/flannel.kubeconfig" flannel
  for n in "${NODES[@]}"; do
    write_kubeconfig "$PKI/node-$n.kubeconfig" "node-$n"
  done
}
