# shellcheck shell=bash
# Builds the testbed's Go binaries from their modules into a cache outside the
# repository, keyed by version, so a second `up` (or a second CI run on the same
# machine) does not rebuild. Sourced by testbed/up; needs lib/common.sh.

# kubernetes_wrapper_gomod MODULE UPSTREAM_GOMOD: prints a go.mod for MODULE
# requiring k8s.io/kubernetes at $K8S_VERSION, with every staging module
# ("k8s.io/x => ./staging/src/k8s.io/x" in upstream's go.mod) replaced by its
# published v0.<minor>.<patch> twin. Also used by bench/lib/build.sh.
kubernetes_wrapper_gomod() {
  local module=$1 kmod=$2 staging_version="v0.${K8S_VERSION#v1.}"
  echo "module $module"
  echo
  echo "go 1.24.0"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  echo "replace ("
  sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 '"$staging_version"'#p' "$kmod"
  echo ")"
}

# kubernetes_ldflags: -s -w and the version stamps kubectl, the API server and
# e2e.test report (hack/lib/version.sh does the same).
kubernetes_ldflags() {
  local major=1 minor=${K8S_VERSION#v1.} p ldflags="-s -w"
  minor=${minor%%.*}
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$ldflags"
}

# build_kubernetes: the Kubernetes server components and kubectl at $K8S_VERSION.
# k8s.io/kubernetes cannot be `go install`ed (its go.mod replaces the k8s.io/*
# staging modules with local paths), so a throw-away module requires it and
# replaces every staging module with its published v0.x.y twin.
build_kubernetes() {
  local out="$NC_CACHE/kubernetes-$K8S_VERSION"
  local stamp="$out/.complete"
  if [[ -f $stamp ]]; then
    log "kubernetes $K8S_VERSION: cached in $out"
    return 0
  fi
  local work="$NC_CACHE/src/kubernetes-$K8S_VERSION"
  mkdir -p "$work" "$out/bin"

  log "kubernetes $K8S_VERSION: fetching module (Go module proxy)"
  local kmod
  kmod=$(cd "$work" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  [[ -f $kmod ]] || die "could not download k8s.io/kubernetes@$K8S_VERSION"

  kubernetes_wrapper_gomod netconform.local/testbed-kubernetes "$kmod" >"$work/go.mod"
  {
    echo "//go:build tools"
    echo
    echo "package tools"
    echo
    echo "import ("
    local c
    for c in $K8S_COMPONENTS; do echo "	_ \"k8s.io/kubernetes/$c\""; done
    echo ")"
  } >"$work/tools.go"

  log "kubernetes $K8S_VERSION: resolving dependencies"
  (cd "$work" && go mod tidy) || die "go mod tidy failed in $work"

  local pkgs=() c
  for c in $K8S_COMPONENTS; do pkgs+=("k8s.io/kubernetes/$c"); done
  local ldflags; ldflags=$(kubernetes_ldflags)
  log "kubernetes $K8S_VERSION: building ${K8S_COMPONENTS} (cold: tens of minutes on 2 cores)"
  (cd "$work" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/bin/" "${pkgs[@]}") \
    || die "building kubernetes failed (see output above)"
  touch "$stamp"
  log "kubernetes $K8S_VERSION: built into $out/bin"
}

# build_coredns: CoreDNS at $COREDNS_VERSION, static.
build_coredns() {
  local out="$NC_CACHE/coredns-$COREDNS_VERSION"
  if [[ -f $out/.complete ]]; then
    log "coredns $COREDNS_VERSION: cached in $out"
    return 0
  fi
  mkdir -p "$out/bin"
  log "coredns $COREDNS_VERSION: building"
  (cd "$out" && CGO_ENABLED=0 GOBIN="$out/bin" go install -trimpath -ldflags "-s -w" \
    "github.com/coredns/coredns@$COREDNS_VERSION") || die "building coredns failed"
  touch "$out/.complete"
}
