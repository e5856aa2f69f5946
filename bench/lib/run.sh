# shellcheck shell=bash
# One function per peer: run it against the running testbed, time it, and
# record passed / failed / skipped. Sourced by bench/peers.

PEERS_OUT=${NETCONFORM_PEERS_OUT:-/var/tmp/netconform-peers}
PEERS_RESULTS="$bench/peers-results.tsv"
PEER_RUNS="$bench/peer-runs"
# bench/peers --procs N: e2e and netpol in N ginkgo processes (1: e2e.test alone,
# serially, as the healthy-testbed figures were measured).
PEERS_PROCS=${PEERS_PROCS:-1}

E2E_CONFORMANCE_FOCUS='\[sig-network\].*\[Conformance\]'
E2E_NETPOL_FOCUS='\[Feature:NetworkPolicy\]'
# This kernel has no SCTP module: the SCTP connectivity cases cannot run.
E2E_NETPOL_SKIP='SCTPConnectivity'
# cyclonus's own default exclusions (pkg/cli/generate.go) plus SCTP (no kernel
# module here).
CYCLONUS_EXCLUDE=multi-peer,upstream-e2e,example,end-port,namespaces-by-default-label,sctp

run_dir() { # PEER FAULT: a fresh output directory for one run
  local d
  d="$PEERS_OUT/$(date -u +%Y%m%dT%H%M%SZ)-$1${2:+-$2}"
  mkdir -p "$d"
  echo "$d"
}

# record_run PEER FAULT SECONDS DIR JUNIT_GLOB [FOCUS]: counts the JUnit test
# cases (only those whose name matches FOCUS: ginkgo also lists every spec it
# filtered out, as skipped), appends one line to peers-results.tsv and writes
# the failed names to peer-runs/.
record_run() {
  local peer=$1 fault=${2:-none} seconds=$3 dir=$4 glob=$5 focus=${6:-}
  mkdir -p "$PEER_RUNS"
  local base; base=$(basename "$dir")
  local counts
  counts=$(python3 - "$dir" "$glob" "$focus" "$PEER_RUNS/$base.failed" <<'PY'
import glob, re, sys
import xml.etree.ElementTree as ET
d, pattern, focus, failed_out = sys.argv[1:5]
passed = failed = skipped = 0
failed_names = []
for path in sorted(glob.glob(f"{d}/{pattern}")):
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        # netconform's JUnit names a trial by scenario (classname) and check;
        # e2e's classname is the suite's, with spaces.
        cls = case.get("classname", "")
        if cls and " " not in cls and not name.startswith(cls + "::"):
            name = f"{cls}::{name}"
        if focus and not re.search(focus, name):
            continue
        if name.startswith("[SynchronizedBeforeSuite]") or name.startswith("[SynchronizedAfterSuite]") \
                or name.startswith("[ReportAfterSuite]") or name.startswith("[ReportBeforeSuite]"):
            continue
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
            failed_names.append(name)
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
with open(failed_out, "w") as f:
    for n in failed_names:
        f.write(n + "\n")
print(f"{passed}\t{failed}\t{skipped}")
PY
)
  [[ -f $PEERS_RESULTS ]] ||
    printf 'when\thost\tpeer\tversion\tfault\tpassed\tfailed\tskipped\twall_s\trun\n' >"$PEERS_RESULTS"
  local version=$K8S_VERSION
  [[ $peer == cyclonus ]] && version=$CYCLONUS_VERSION
  [[ $peer == netconform* ]] && version=$(git -C "$root" rev-parse --short HEAD)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(hostname)" "$peer" \
    "$version" "$fault" "$counts" "$seconds" "$base" | tee -a "$PEERS_RESULTS"
}

run_e2e_focus() { # PEER FAULT FOCUS SKIP
  local peer=$1 fault=$2 focus=$3 skip=$4 dir start
  dir=$(run_dir "$peer" "$fault")
  log "$peer: e2e.test --ginkgo.focus='$focus'${skip:+ --ginkgo.skip='$skip'} (log: $dir/e2e.log)"
  # e2e.test exits non-zero when a test fails: the JUnit says which.
  # The testbed's own kubectl: the tests exec through it, and a kubectl on
  # PATH may be any version.
  local e2e_args=(--provider=local --kubeconfig="$KUBECONFIG" --report-dir="$dir"
    --kubectl-path="$BIN/kubectl")
  start=$SECONDS
  if ((PEERS_PROCS > 1)); then
    # Upstream's own way (hack/ginkgo-e2e.sh): the ginkgo CLI spreads the
    # specs over N processes; [Serial] ones still run alone, at the end.
    "$E2E_OUT/bin/ginkgo" --procs="$PEERS_PROCS" --focus="$focus" ${skip:+--skip="$skip"} \
      --no-color --timeout=4h -v "$E2E_OUT/bin/e2e.test" -- "${e2e_args[@]}" >"$dir/e2e.log" 2>&1 || true
  else
    "$E2E_OUT/bin/e2e.test" "${e2e_args[@]}" \
      --ginkgo.focus="$focus" ${skip:+--ginkgo.skip="$skip"} --ginkgo.no-color \
      --ginkgo.timeout=4h --ginkgo.v >"$dir/e2e.log" 2>&1 || true
  fi
  local label=$peer
  ((PEERS_PROCS > 1)) && label="$peer [--procs $PEERS_PROCS]"
  record_run "$label" "$fault" $((SECONDS - start)) "$dir" 'junit*.xml' "$focus"
}

run_e2e() { run_e2e_focus e2e "$1" "$E2E_CONFORMANCE_FOCUS" ""; }
run_netpol() { run_e2e_focus netpol "$1" "$E2E_NETPOL_FOCUS" "$E2E_NETPOL_SKIP"; }

run_cyclonus() {
  local fault=$1 dir start
  dir=$(run_dir cyclonus "$fault")
  log "cyclonus: generate over TCP and UDP, excluding $CYCLONUS_EXCLUDE (log: $dir/cyclonus.log)"
  start=$SECONDS
  # --job-timeout-seconds=1: the connect timeout upstream's netpol e2e and
  # netconform use too (cyclonus's default of 10 s makes every blocked probe
  # cost 10 s; no healthy connection on the testbed takes a second).
  "$CYCLONUS_OUT/bin/cyclonus" generate --server-protocol=TCP,UDP --exclude="$CYCLONUS_EXCLUDE" \
    --job-timeout-seconds=1 \
    --cleanup-namespaces --junit-results-file="$dir/junit.xml" \
    ${NETCONFORM_CYCLONUS_ARGS:-} >"$dir/cyclonus.log" 2>&1 || true
  record_run cyclonus "$fault" $((SECONDS - start)) "$dir" 'junit.xml'
}

# NETCONFORM_PEERS_TEST_ARGS: libtest arguments for a part of the catalogue,
# e.g. 'np-' (the NetworkPolicy cases, next to netpol) or '--skip np-' (the
# rest, next to e2e); recorded with the peer's name.
run_netconform() {
  local fault=$1 dir start args=${NETCONFORM_PEERS_TEST_ARGS:-}
  dir=$(run_dir netconform "$fault")
  (cd "$root" && cargo test --quiet --offline -p netconform-suite --test conformance --no-run) >&2
  log "netconform: the catalogue${args:+ ($args)} (log: $dir/netconform.log)"
  start=$SECONDS
  # shellcheck disable=SC2086 # the arguments are words
  (cd "$root" && NETCONFORM_REQUIRE_CLUSTER=1 NETCONFORM_REPORT_DIR="$dir" \
    cargo test --quiet --offline -p netconform-suite --test conformance -- $args) >"$dir/netconform.log" 2>&1 || true
  record_run "netconform${args:+ [$args]}" "$fault" $((SECONDS - start)) "$dir" 'junit.xml'
}
