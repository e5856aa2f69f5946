# shellcheck shell=bash
# Builds the peers (upstream e2e.test, agnhost, cyclonus) from the Go module
# proxy into the cache outside the repository, keyed by version, the way
# testbed/lib/build.sh builds Kubernetes. Sourced by bench/peers; needs
# testbed/lib/common.sh (NC_CACHE, K8S_VERSION, log, die) and testbed/lib/build.sh
# (kubernetes_wrapper_gomod, kubernetes_ldflags).

PEERS_CACHE="$NC_CACHE/peers"
E2E_OUT="$PEERS_CACHE/e2e-$K8S_VERSION"
CYCLONUS_OUT="$PEERS_CACHE/cyclonus-$CYCLONUS_VERSION"

# build_e2e: e2e.test and agnhost at the testbed's Kubernetes version.
# `go test -c` of a package in a dependency module needs that package's test
# imports in the module graph, and `go mod tidy` records only the main module's
# own imports: so a tools file imports test/e2e and every import of
# test/e2e/e2e_test.go (read from the downloaded source, not copied by hand).
build_e2e() {
  local work="$NC_CACHE/src/e2e-$K8S_VERSION"
  if [[ -f $E2E_OUT/.complete ]]; then
    log "e2e.test $K8S_VERSION: cached in $E2E_OUT"
    build_ginkgo "$work"
    return 0
  fi
  mkdir -p "$work" "$E2E_OUT/bin"
  log "e2e.test $K8S_VERSION: fetching k8s.io/kubernetes (Go module proxy)"
  local info kmod kdir
  info=$(cd "$work" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION")
  kmod=$(sed -n 's/.*"GoMod": "\(.*\)",/\1/p' <<<"$info")
  kdir=$(sed -n 's/.*"Dir": "\(.*\)",/\1/p' <<<"$info")
  [[ -f $kmod && -d $kdir ]] || die "could not download k8s.io/kubernetes@$K8S_VERSION"
  kubernetes_wrapper_gomod netconform.local/peers-e2e "$kmod" >"$work/go.mod"
  {
    echo "//go:build tools"
    echo
    echo "package tools"
    echo
    echo "import ("
    echo "	_ \"k8s.io/kubernetes/test/e2e\""
    echo "	_ \"k8s.io/kubernetes/test/images/agnhost\""
    # Every import path of e2e_test.go's import block (comments skipped).
    sed -n '/^import (/,/^)/p' "$kdir/test/e2e/e2e_test.go" | grep -v '^\s*//' |
      grep -o '"[^"]*"' | grep '\.' | sort -u | sed 's/^/	_ /'
    echo ")"
  } >"$work/tools.go"
  log "e2e.test $K8S_VERSION: resolving dependencies"
  (cd "$work" && go mod tidy) || die "go mod tidy failed in $work"
  local ldflags; ldflags=$(kubernetes_ldflags)
  log "e2e.test $K8S_VERSION: building agnhost"
  (cd "$work" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$E2E_OUT/bin/agnhost" \
    k8s.io/kubernetes/test/images/agnhost) || die "building agnhost failed"
  cp "$kdir/test/images/agnhost/VERSION" "$E2E_OUT/agnhost.VERSION"
  log "e2e.test $K8S_VERSION: building e2e.test (cold: tens of minutes on 2 cores)"
  (cd "$work" && CGO_ENABLED=0 go test -c -trimpath -ldflags "$ldflags" -o "$E2E_OUT/bin/e2e.test" \
    k8s.io/kubernetes/test/e2e) || die "building e2e.test failed"
  touch "$E2E_OUT/.complete"
  log "e2e.test $K8S_VERSION: built into $E2E_OUT/bin"
  build_ginkgo "$work"
}

# build_ginkgo WORK: the ginkgo CLI at the version e2e.test was built with (the
# same module graph), for `bench/peers --procs N`: only the CLI runs a test
# binary's specs in parallel processes. Seconds with the build cache warm.
build_ginkgo() {
  local work=$1
  [[ -x $E2E_OUT/bin/ginkgo ]] && return 0
  log "ginkgo CLI: building (the version e2e.test uses)"
  (cd "$work" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$E2E_OUT/bin/ginkgo" \
    github.com/onsi/ginkgo/v2/ginkgo) || die "building the ginkgo CLI failed"
}

# build_cyclonus: the cyclonus CLI at $CYCLONUS_VERSION (its own module, its
# own client-go; nothing shared with the Kubernetes build).
build_cyclonus() {
  if [[ -f $CYCLONUS_OUT/.complete ]]; then
    log "cyclonus $CYCLONUS_VERSION: cached in $CYCLONUS_OUT"
    return 0
  fi
  mkdir -p "$CYCLONUS_OUT/bin"
  log "cyclonus $CYCLONUS_VERSION: building"
  (cd "$CYCLONUS_OUT" && CGO_ENABLED=0 GOBIN="$CYCLONUS_OUT/bin" GOFLAGS=-mod=mod \
    go install -trimpath -ldflags "-s -w" \
    "github.com/mattfenwick/cyclonus/cmd/cyclonus@$CYCLONUS_VERSION") || die "building cyclonus failed"
  touch "$CYCLONUS_OUT/.complete"
}
