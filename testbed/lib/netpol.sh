# shellcheck shell=bash
# The testbed's NetworkPolicy enforcer (testbed/netpol, a Rust binary): one per
# node, in the node's network namespace, programming iptables for that node's pods.

NETPOL_BIN="$TESTBED_DIR/../target/release/netconform-netpol"
# The slow-pair fault's packet delayer (testbed/delay), built alongside.
DELAY_BIN="$TESTBED_DIR/../target/release/netconform-delay"
# The service-stale-updates fault's API proxy (testbed/api-filter), likewise.
API_FILTER_BIN="$TESTBED_DIR/../target/release/netconform-api-filter"

build_netpol() {
  log "netpol enforcer and fault helpers: cargo build --release -p netconform-netpol -p netconform-delay -p netconform-api-filter"
  (cd "$TESTBED_DIR/.." && cargo build --quiet --release -p netconform-netpol -p netconform-delay -p netconform-api-filter) ||
    die "building the enforcer and fault helpers failed"
}

start_netpol() { # NODE [ENFORCER ARGS...]
  local n=$1
  shift
  start_node_proc "$n" "$n-netpol" ip netns exec "$n" "$NETPOL_BIN" --kubeconfig "$PKI/netpol.kubeconfig" --node "$n" --family "$(by_family ipv4 ipv6)" "$@"
}
