# shellcheck shell=bash
# `smoke`: proves the testbed is a working cluster with nothing but its busybox
# image: cross-node pod traffic without NAT, Service DNS, NodePort on every node,
# and NetworkPolicy enforcement (deny, then allow). Exits non-zero on the first
# failed step. Every probe is bounded (wget -T, timeout).

SMOKE_NS=netconform-testbed-smoke

smoke_pod() { # NAME NODE LABEL COMMAND
  cat <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $1, namespace: $SMOKE_NS, labels: {app: $3}}
spec:
  nodeName: $2
  terminationGracePeriodSeconds: 0
  securityContext: {runAsNonRoot: true, runAsUser: 65534, runAsGroup: 65534}
  containers:
  - name: main
    image: $BUSYBOX_IMAGE
    imagePullPolicy: Never
    command: [/bin/sh, -c, '$4']
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
    ports: [{name: http, containerPort: 8080}]
    readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
---
EOF
}

# The server answers /cgi-bin/ip with the source address it saw.
SMOKE_SERVER='mkdir -p /tmp/www/cgi-bin && printf "#!/bin/sh\necho Content-Type: text/plain\necho\necho \$REMOTE_ADDR\n" >/tmp/www/cgi-bin/ip && chmod +x /tmp/www/cgi-bin/ip && exec httpd -f -p 8080 -h /tmp/www'
SMOKE_CLIENT='exec httpd -f -p 8080 -h /tmp'

# smoke_get TARGET_IP PORT: from the client pod, the server's answer to /cgi-bin/ip.
# (Debian's static busybox wget crashes in glibc's NSS; nc and nslookup do not.)
smoke_get() {
  { kubectl_admin -n "$SMOKE_NS" exec client -- sh -c \
    "printf 'GET /cgi-bin/ip HTTP/1.0\\r\\n\\r\\n' | nc -w 2 $1 $2" 2>/dev/null || true; } | tail -n 1 | tr -d '\r' | unmap_v4
}
# busybox httpd reports IPv4 clients as [::ffff:a.b.c.d].
unmap_v4() { sed 's/^\[::ffff:\(.*\)\]$/\1/'; }
# smoke_resolve NAME: the A record the client pod's resolver returns for NAME.
smoke_resolve() {
  { kubectl_admin -n "$SMOKE_NS" exec client -- nslookup "$1" 2>&1 || true; } | awk '/^Name:/{found=1} found && /^Address/{print $NF; exit}'
}

smoke_step() { printf '  %-74s' "$1"; }
smoke_ok() { echo "ok${1:+  ($1)}"; }
smoke_fail() { echo "FAILED: $1"; kubectl_admin delete namespace "$SMOKE_NS" --wait=false >/dev/null 2>&1; exit 1; }

cmd_smoke() {
  local w1=${NODES[1]} w2=${NODES[2]} out
  kubectl_admin delete namespace "$SMOKE_NS" --ignore-not-found --wait=true >/dev/null
  kubectl_admin create namespace "$SMOKE_NS" >/dev/null
  trap 'kubectl_admin delete namespace "$SMOKE_NS" --wait=false >/dev/null 2>&1' RETURN
  {
    smoke_pod server "$w2" server "$SMOKE_SERVER"
    smoke_pod client "$w1" client "$SMOKE_CLIENT"
    cat <<EOF
apiVersion: v1
kind: Service
metadata: {name: server, namespace: $SMOKE_NS}
spec:
  type: NodePort
  selector: {app: server}
  ports: [{port: 80, targetPort: http}]
EOF
  } | kubectl_admin apply -f - >/dev/null
  kubectl_admin -n "$SMOKE_NS" wait --for=condition=Ready pod --all --timeout=60s >/dev/null || smoke_fail "pods not Ready"
  local server_ip client_ip nodeport
  server_ip=$(kubectl_admin -n "$SMOKE_NS" get pod server -o jsonpath='{.status.podIP}')
  client_ip=$(kubectl_admin -n "$SMOKE_NS" get pod client -o jsonpath='{.status.podIP}')
  nodeport=$(kubectl_admin -n "$SMOKE_NS" get svc server -o jsonpath='{.spec.ports[0].nodePort}')
  echo "smoke: client $client_ip on $w1, server $server_ip on $w2, NodePort $nodeport"

  smoke_step "pod -> pod across nodes by pod IP, server sees client IP"
  out=$(smoke_get "$server_ip" 8080)
  [[ -n $out ]] || smoke_fail "no answer"
  [[ $out == "$client_ip" ]] || smoke_fail "server saw $out, expected $client_ip"
  smoke_ok "server saw $out"

  smoke_step "ClusterIP Service by DNS name"
  local name="server.$SMOKE_NS.svc.$CLUSTER_DOMAIN" cluster_ip svc_ip
  cluster_ip=$(kubectl_admin -n "$SMOKE_NS" get svc server -o jsonpath='{.spec.clusterIP}')
  svc_ip=$(smoke_resolve "$name")
  [[ $svc_ip == "$cluster_ip" ]] || smoke_fail "$name resolved to '$svc_ip', expected $cluster_ip"
  out=$(smoke_get "$svc_ip" 80)
  [[ $out == "$client_ip" ]] || smoke_fail "$name ($svc_ip:80) answered '$out'"
  smoke_ok "$name -> $svc_ip, server saw $out"

  local n i
  for n in "${NODES[@]}"; do
    smoke_step "NodePort on $n (${NODE_IP[$n]}:$nodeport) from the host"
    # kube-proxy on each node programs a new Service on its own schedule: allow
    # it a bounded moment (20 tries, 0.5 s apart) before calling it a failure.
    out=""
    for ((i = 0; i < 20; i++)); do
      out=$(curl -sS --max-time 5 "http://${NODE_IP[$n]}:$nodeport/cgi-bin/ip" 2>/dev/null | unmap_v4) && [[ -n $out ]] && break
      sleep 0.5
    done
    [[ -n $out ]] || smoke_fail "no answer after 20 tries"
    smoke_ok "server saw $out$( ((i > 0)) && echo ", after $((i + 1)) tries")"
  done

  kubectl_admin apply -f - >/dev/null <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: $SMOKE_NS}
spec: {podSelector: {}, policyTypes: [Ingress]}
EOF
  smoke_step "default-deny ingress blocks client -> server"
  local i blocked=0
  for ((i = 0; i < 10; i++)); do
    if [[ -z $(smoke_get "$server_ip" 8080) ]]; then
      blocked=1; break
    fi
    sleep 0.5
  done
  ((blocked)) || smoke_fail "connection still allowed after 10 tries"
  smoke_ok

  kubectl_admin apply -f - >/dev/null <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client, namespace: $SMOKE_NS}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress: [{from: [{podSelector: {matchLabels: {app: client}}}], ports: [{port: http}]}]
EOF
  smoke_step "allow policy re-opens client -> server"
  out=""
  for ((i = 0; i < 10; i++)); do
    out=$(smoke_get "$server_ip" 8080)
    [[ -n $out ]] && break
    sleep 0.5
  done
  [[ $out == "$client_ip" ]] || smoke_fail "still blocked after 10 tries"
  smoke_ok "server saw $out"
  echo "smoke: all checks passed"
}
