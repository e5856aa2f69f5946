# shellcheck shell=bash
# `smoke`: proves the testbed is a working cluster with nothing but its busybox
# image: cross-node pod traffic without NAT, Service DNS, NodePort on every node,
# and NetworkPolicy enforcement (deny, then allow); on a dual-stack testbed each
# of them over IPv6 too. Exits non-zero on the first failed step. Every probe is
# bounded (nc -w, curl --max-time, a fixed number of tries).

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
    "printf 'GET /cgi-bin/ip HTTP/1.0\\r\\n\\r\\n' | nc -w 2 $1 $2" 2>/dev/null || true; } | tail -n 1 | tr -d '\r' | plain_ip
}
# busybox httpd reports IPv4 clients as [::ffff:a.b.c.d], IPv6 ones as [a:b::c].
plain_ip() { sed -e 's/^\[::ffff:\(.*\)\]$/\1/' -e 's/^\[\(.*\)\]$/\1/'; }
# smoke_resolve NAME [TYPE]: the A (or TYPE) record the client pod's resolver returns for NAME.
smoke_resolve() {
  { kubectl_admin -n "$SMOKE_NS" exec client -- nslookup -type="${2:-A}" "$1" 2>&1 || true; } | awk '/^Name:/{found=1} found && /^Address/{print $NF; exit}'
}
# The families the smoke covers, each as <index in podIPs/clusterIPs>:<label>.
smoke_families() {
  local f i=0
  for f in $(testbed_families); do echo "$i:${f/ipv/IPv}"; i=$((i + 1)); done
}
# url_host IP: an address as it goes in a URL ([a:b::c] for IPv6).
url_host() { if [[ $1 == *:* ]]; then echo "[$1]"; else echo "$1"; fi; }

smoke_step() { printf "  %-84s" "$1"; }
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
  ipFamilyPolicy: PreferDualStack
  selector: {app: server}
  ports: [{port: 80, targetPort: http}]
EOF
  } | kubectl_admin apply -f - >/dev/null
  kubectl_admin -n "$SMOKE_NS" wait --for=condition=Ready pod --all --timeout=60s >/dev/null || smoke_fail "pods not Ready"
  local nodeport entry idx family server_ip client_ip i
  local -A server_ips client_ips
  nodeport=$(kubectl_admin -n "$SMOKE_NS" get svc server -o jsonpath='{.spec.ports[0].nodePort}')
  for entry in $(smoke_families); do
    idx=${entry%%:*} family=${entry#*:}
    server_ips[$family]=$(kubectl_admin -n "$SMOKE_NS" get pod server -o jsonpath="{.status.podIPs[$idx].ip}")
    client_ips[$family]=$(kubectl_admin -n "$SMOKE_NS" get pod client -o jsonpath="{.status.podIPs[$idx].ip}")
    echo "smoke $family: client ${client_ips[$family]} on $w1, server ${server_ips[$family]} on $w2, NodePort $nodeport"
  done

  for entry in $(smoke_families); do
    idx=${entry%%:*} family=${entry#*:}
    server_ip=${server_ips[$family]} client_ip=${client_ips[$family]}
    smoke_step "$family: pod -> pod across nodes by pod IP, server sees client IP"
    out=$(smoke_get "$server_ip" 8080)
    [[ -n $out ]] || smoke_fail "no answer"
    [[ $out == "$client_ip" ]] || smoke_fail "server saw $out, expected $client_ip"
    smoke_ok "server saw $out"

    smoke_step "$family: ClusterIP Service by DNS name"
    local name="server.$SMOKE_NS.svc.$CLUSTER_DOMAIN" cluster_ip svc_ip type=A
    [[ $family == IPv4 ]] || type=AAAA
    cluster_ip=$(kubectl_admin -n "$SMOKE_NS" get svc server -o jsonpath="{.spec.clusterIPs[$idx]}")
    svc_ip=$(smoke_resolve "$name" "$type")
    [[ $svc_ip == "$cluster_ip" ]] || smoke_fail "$name resolved ($type) to '$svc_ip', expected $cluster_ip"
    # kube-proxy programs a new Service's endpoints asynchronously: its own
    # kubeproxy_network_programming_duration_seconds reads 0.25-3 s on a warm
    # 2-core testbed, and more just after `up`. Allow it the same bounded moment
    # as a NodePort (20 tries, 0.5 s apart) and say when it needed it.
    out=""
    for ((i = 0; i < 20; i++)); do
      out=$(smoke_get "$svc_ip" 80)
      [[ -n $out ]] && break
      sleep 0.5
    done
    [[ -n $out ]] || smoke_fail "$name ($svc_ip:80): no answer after 20 tries"
    [[ $out == "$client_ip" ]] || smoke_fail "$name ($svc_ip:80): server saw $out, expected $client_ip"
    smoke_ok "$name -> $svc_ip, server saw $out$( ((i > 0)) && echo ", after $((i + 1)) tries")"

    local n node_ip
    for n in "${NODES[@]}"; do
      node_ip=$(node_address "${family/IPv/ipv}" "$n")
      smoke_step "$family: NodePort on $n ($(url_host "$node_ip"):$nodeport) from the host"
      # Each node's kube-proxy programs the Service on its own schedule (as above).
      out=""
      for ((i = 0; i < 20; i++)); do
        out=$(curl -sS -g --max-time 5 "http://$(url_host "$node_ip"):$nodeport/cgi-bin/ip" 2>/dev/null | plain_ip) && [[ -n $out ]] && break
        sleep 0.5
      done
      [[ -n $out ]] || smoke_fail "no answer after 20 tries"
      smoke_ok "server saw $out$( ((i > 0)) && echo ", after $((i + 1)) tries")"
    done
  done

  kubectl_admin apply -f - >/dev/null <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: $SMOKE_NS}
spec: {podSelector: {}, policyTypes: [Ingress]}
EOF
  local blocked
  for entry in $(smoke_families); do
    family=${entry#*:}
    smoke_step "$family: default-deny ingress blocks client -> server"
    blocked=0
    for ((i = 0; i < 10; i++)); do
      if [[ -z $(smoke_get "${server_ips[$family]}" 8080) ]]; then
        blocked=1; break
      fi
      sleep 0.5
    done
    ((blocked)) || smoke_fail "connection still allowed after 10 tries"
    smoke_ok
  done

  kubectl_admin apply -f - >/dev/null <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client, namespace: $SMOKE_NS}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress: [{from: [{podSelector: {matchLabels: {app: client}}}], ports: [{port: http}]}]
EOF
  for entry in $(smoke_families); do
    family=${entry#*:}
    smoke_step "$family: allow policy re-opens client -> server"
    out=""
    for ((i = 0; i < 10; i++)); do
      out=$(smoke_get "${server_ips[$family]}" 8080)
      [[ -n $out ]] && break
      sleep 0.5
    done
    [[ $out == "${client_ips[$family]}" ]] || smoke_fail "still blocked after 10 tries"
    smoke_ok "server saw $out"
  done
  echo "smoke: all checks passed"
}
