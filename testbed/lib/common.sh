# shellcheck shell=bash
# Shared settings and helpers for the testbed scripts.
set -euo pipefail

TESTBED_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../versions.env
source "$TESTBED_DIR/versions.env"

# Heavy builds are cached outside the repository, keyed by version.
NC_CACHE=${NETCONFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/netconform}
# Runtime state of the running cluster (PIDs, data dirs, PKI, kubeconfig).
NC_STATE=${NETCONFORM_TESTBED_STATE:-/var/lib/netconform-testbed}

log() { printf '[testbed %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The cluster's shape. Every address below lives inside network namespaces the
# testbed creates (or on its own bridge): nothing here is routed off the machine.
CLUSTER_NAME=netconform
NODES=(netconform-control-plane netconform-worker netconform-worker2)
CONTROL_PLANE=${NODES[0]}
declare -A NODE_IP=(
  [netconform-control-plane]=10.250.0.11
  [netconform-worker]=10.250.0.12
  [netconform-worker2]=10.250.0.13
)
# Host-side veth names (15 characters at most).
declare -A NODE_VETH=(
  [netconform-control-plane]=nctb-cp
  [netconform-worker]=nctb-w1
  [netconform-worker2]=nctb-w2
)
BRIDGE=nctb0
BRIDGE_IP=10.250.0.1
NODE_PREFIX=24
NODE_SUBNET=10.250.0.0/24
# A host outside the cluster, for checks that need one (its own netns on the bridge).
OUTSIDE_NS=netconform-outside
OUTSIDE_IP=10.250.0.100
POD_CIDR=10.251.0.0/16
SERVICE_CIDR=10.252.0.0/16
KUBERNETES_SVC_IP=10.252.0.1
DNS_IP=10.252.0.10
CLUSTER_DOMAIN=cluster.local
APISERVER_URL="https://${NODE_IP[$CONTROL_PLANE]}:6443"
# The IPv6 twins, used when the testbed runs both families (`up --ip-family
# dual`): unique local addresses (fd00::/8), on the same bridge and in the same
# namespaces as the IPv4 ones, so they too never leave the machine.
declare -A NODE_IP6=(
  [netconform-control-plane]=fd00:10:250::11
  [netconform-worker]=fd00:10:250::12
  [netconform-worker2]=fd00:10:250::13
)
BRIDGE_IP6=fd00:10:250::1
NODE_PREFIX6=64
OUTSIDE_IP6=fd00:10:250::100
# Node pod CIDRs are /64s of it (the controller manager's IPv6 mask).
POD_CIDR6=fd00:10:251::/56
SERVICE_CIDR6=fd00:10:252::/112

BIN="$NC_CACHE/kubernetes-$K8S_VERSION/bin"
KUBECONFIG_OUT="$NC_STATE/kubeconfig"
PIDS="$NC_STATE/pids"
LOGS="$NC_STATE/logs"
PKI="$NC_STATE/pki"

# The pod network the running testbed was brought up with (`up --cni`).
CNIS="bridge flannel"
testbed_cni() { cat "$NC_STATE/cni" 2>/dev/null || echo bridge; }
# Who enforces NetworkPolicy (`up --netpol`): the testbed's enforcer, or no one.
testbed_netpol() { cat "$NC_STATE/netpol" 2>/dev/null || echo testbed; }
# The IP families (`up --ip-family`): IPv4 only, or IPv4 and IPv6 (IPv4 primary).
IP_FAMILIES="ipv4 dual"
# default_ip_family CNI: what `up` runs without --ip-family: both families,
# but on flannel, which the testbed runs IPv4 only.
default_ip_family() { if [[ $1 == flannel ]]; then echo ipv4; else echo dual; fi; }
testbed_ip_family() { cat "$NC_STATE/ip-family" 2>/dev/null || echo ipv4; }
testbed_dual() { [[ $(testbed_ip_family) == dual ]]; }
# The families the testbed runs, IPv4 first: every per-family list comes from here.
testbed_families() { if testbed_dual; then echo "ipv4 ipv6"; else echo ipv4; fi; }
# by_family V4 V6: the value of each of the testbed's families, comma-separated
# (the lists the components take).
by_family() {
  local f out=()
  for f in $(testbed_families); do if [[ $f == ipv4 ]]; then out+=("$1"); else out+=("$2"); fi; done
  (IFS=,; echo "${out[*]}")
}
pod_cidrs() { by_family "$POD_CIDR" "$POD_CIDR6"; }
service_cidrs() { by_family "$SERVICE_CIDR" "$SERVICE_CIDR6"; }
node_ips() { by_family "${NODE_IP[$1]}" "${NODE_IP6[$1]}"; }
# node_address FAMILY NODE: the node's address in that family (ipv4 or ipv6).
node_address() { if [[ $1 == ipv6 ]]; then echo "${NODE_IP6[$2]}"; else echo "${NODE_IP[$2]}"; fi; }

node_dir() { echo "$NC_STATE/nodes/$1"; }
# Each node's pods live under their own cgroup root, or kubelets would treat
# each other's pods as orphans.
node_cgroup() { echo "nctb-$1"; }

kubectl_admin() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_OUT" "$@"; }

# start_time PID: the kernel's start time of PID (field 22 of /proc/PID/stat).
start_time() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'; }

# recorded_pid NAME: the PID recorded under NAME, if that very process still runs.
# A pid file holds "PID START_TIME", so a PID the kernel has since reused for
# another process (after a reboot or a crash) is never mistaken for ours.
recorded_pid() {
  local f="$PIDS/$1.pid" pid start
  [[ -f $f ]] || return 1
  read -r pid start <"$f"
  [[ -n $pid && -n $start && $(start_time "$pid") == "$start" ]] || return 1
  echo "$pid"
}

# pid_alive NAME: is the process recorded under NAME running?
pid_alive() { recorded_pid "$1" >/dev/null; }

# stop_recorded NAME: stops the process recorded under NAME, if it runs, and
# waits for it to be gone.
stop_recorded() {
  local pid
  if pid=$(recorded_pid "$1"); then
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$PIDS/$1.pid"
}

# start_proc NAME CMD...: starts CMD in its own session, logging to $LOGS/NAME.log,
# and records its PID in $PIDS/NAME.pid. CMD must exec its payload (ip netns exec
# and nsenter do), so the recorded PID is the payload's.
start_proc() {
  local name=$1; shift
  mkdir -p "$PIDS" "$LOGS"
  if pid_alive "$name"; then
    log "$name already running (pid $(recorded_pid "$name"))"
    return 0
  fi
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo "$! $(start_time $!)" >"$PIDS/$name.pid"
}

# The CPU cgroup of a node's own processes (control plane, containerd, kubelet,
# kube-proxy, enforcer): beside the node's pods (kubelet's kubepods, under the
# same node cgroup), as on a real node with system-reserved or in a kind node
# container. Left in the root cgroup, each of their busy threads weighs as
# much as a whole node's pods, and the pods (CoreDNS, the agents) starve
# whenever the cluster is busy (docs/verdicts.md).
node_system_cgroup() { echo "$(node_cgroup "$1")/system"; }

# start_node_proc NODE NAME CMD...: start_proc, with CMD in NODE's system cgroup
# (it joins before it execs, so every thread and child is in it).
start_node_proc() {
  local group; group=$(node_system_cgroup "$1"); shift
  local name=$1; shift
  start_proc "$name" bash -c '
    group=$1; shift
    for hierarchy in /sys/fs/cgroup/cpu /sys/fs/cgroup/cpuacct; do
      [[ -d $hierarchy ]] || continue
      mkdir -p "$hierarchy/$group" && echo $$ >"$hierarchy/$group/cgroup.procs"
    done
    if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then   # cgroup v2
      mkdir -p "/sys/fs/cgroup/$group" && echo $$ >"/sys/fs/cgroup/$group/cgroup.procs"
    fi
    exec "$@"' _ "$group" "$@"
}

# wait_for DESCRIPTION SECONDS CMD...: polls CMD once a second until it succeeds,
# failing with DESCRIPTION after SECONDS.
wait_for() {
  local what=$1 secs=$2 i; shift 2
  for ((i = 0; i < secs; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  die "timed out after ${secs}s waiting for $what"
}

# write_if_changed FILE: writes stdin to FILE only when the content differs, so a
# repeated `up` does not disturb running processes that watch their config.
write_if_changed() {
  local tmp; tmp=$(mktemp "$1.XXXX")
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
}
