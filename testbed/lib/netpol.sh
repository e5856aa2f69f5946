# shellcheck shell=bash
# The testbed's NetworkPolicy enforcer (testbed/netpol, a Rust binary): one per
# node, in the node's network namespace, programming iptables for that node's pods.

NETPOL_BIN="$TESTBED_DIR/../target/release/netconform-netpol"

build_netpol() {
  log "netpol enforcer: cargo build --release -p netconform-netpol"
  (cd "$TESTBED_DIR/.." && cargo build --quiet --release -p netconform-netpol) || die "building the enforcer failed"
}

start_netpol() {
  local n=$1
  start_proc "$n-netpol" ip netns exec "$n" "$NETPOL_BIN" --kubeconfig "$PKI/netpol.kubeconfig" --node "$n"
}
