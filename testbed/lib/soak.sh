#!/usr/bin/env bash
# testbed/bench --soak N: N consecutive catalogue runs on the healthy testbed.
# On a healthy cluster every failed check is a false failure; each run's line
# in testbed/soak-results.tsv names them, with the wall time, the DNS queries
# that went unanswered (covered by the resolver's retry) and the quiet-phase
# node-pair p50s, and what the nodes' kernels counted during the run (conntrack
# invalid/insert_failed/drop and kube-proxy's INVALID drops, summed over the
# nodes): a false failure with a counter above 0 points at the data path.
# Then the TCP connects that needed a resent SYN (0.9 s or more), and the
# flows to a Service address that conntrack kept untranslated (sent before the
# Service was programmed) from a source port in the kernel's ephemeral range:
# a check's later connection could get that port and follow the flow into
# nowhere (kubernetes#48719), so this must stay 0 ("-": events not recorded).
# Failed runs keep their output under /var/tmp/netconform-soak/, and every
# node's TCP conntrack events and neighbour-table changes of the run
# (timestamped), to find the flow of a timed-out probe by its local port and
# the resolution behind a "No route to host" (NETCONFORM_SOAK_CONNTRACK_EVENTS=0:
# not recorded; conntrack events cost no measurable wall time in a 16-run soak).
# Failed runs also keep what the testbed's components (kubelets, containerd,
# API server) logged during the run. The cpu column is the host's busy and
# steal share over the run: steal is CPU the hypervisor gave to someone else.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/.." && pwd)
runs=$1
out="$here/soak-results.tsv"
keep=/var/tmp/netconform-soak
mkdir -p "$keep"
[[ -f $out ]] || printf 'when\thost\tcommit\trun\twall_s\tchecks\tfailed\tdns_lost\ttcp_pair_p50_us\tudp_pair_p50_us\tfailed_checks\tkernel_counters\tcpu\texec_outputs_lost\tpod_network\tconnects_with_a_resent_syn\tuntranslated_flows_from_ephemeral_ports\n' >"$out"
events=${NETCONFORM_SOAK_CONNTRACK_EVENTS:-1}
source "$here/lib/common.sh"

# The soak runs on the pod network the testbed is up with (its recorded
# choice; the defaults when it is down), and says which in every line.
network="--cni $(testbed_cni) --netpol $(testbed_netpol) --ip-family $(testbed_ip_family)"
# shellcheck disable=SC2086 # three flags and their values
bash "$here/testbed" up $network >&2
network="cni=$(testbed_cni) netpol=$(testbed_netpol) ip_family=$(testbed_ip_family)"
eval "$(bash "$here/testbed" env)"
# Built once and copied with the scenarios: every run tests the same commit,
# even if the checkout is edited while the soak runs.
frozen=$(mktemp -d /var/tmp/netconform-soak-suite.XXXX)
pids=()
# The conntrack loggers run inside node namespaces: they must not outlive the
# soak (they would keep a torn-down node's namespace and veth alive).
trap 'rm -rf "$frozen"; ((${#pids[@]} == 0)) || kill "${pids[@]}" 2>/dev/null || true' EXIT
binary=$(cd "$root" && cargo test --quiet -p netconform-suite --test conformance --no-run --message-format=json |
  python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "conformance":
        print(m["executable"])')
[[ -x $binary ]] || { echo "soak: could not build the conformance suite" >&2; exit 1; }
cp "$binary" "$frozen/conformance"
cp -r "$root/scenarios" "$frozen/scenarios"
commit=$(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- . ':!testbed/*.tsv' || echo +dirty)

summarise() { # results.json -> checks, failed, dns_lost, tcp pairs, udp pairs, failed names, exec outputs lost, resent SYNs (tab-separated)
  python3 - "$1" <<'PY'
import json, sys
try:
    run = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"0\t1\t0\t-\t-\tno results.json ({e})\t0\t0")
    sys.exit()
checks = run["checks"]
failed = [c["trial"] for c in checks if c["status"] == "failed"]
lost = sum((c.get("dns") or {}).get("lost", 0) for c in checks)
def pairs(trial):
    c = next((c for c in checks if c["trial"] == trial), None)
    if not c or not c.get("node_pairs"):
        return "-"
    short = lambda n: n.replace("netconform-", "")
    return " ".join(f"{short(p['from'])}>{short(p['to'])}:{p['p50_us']}" for p in c["node_pairs"])
# TCP connects that took 0.9 s or more: the kernel resends an unanswered SYN
# after 1 s, so each is one SYN or SYN-ACK lost and recovered. A timed-out
# connect lost two; how often one alone is lost tells a path that drops the
# odd packet from one that stalls for a second or more.
resent = sum(1 for c in checks for p in c.get("probes") or []
             if p["spec"].get("kind") == "tcp"
             for a in (p.get("result") or {}).get("attempts", [])
             if a["outcome"] == "connected" and a.get("latency_us", 0) >= 900_000)
print("\t".join([str(len(checks)), str(len(failed)), str(lost),
                 pairs("latency::tcp-connect-pairs"), pairs("latency::udp-round-trip-pairs"),
                 ",".join(failed) or "-", str(len(run.get("exec_transport_losses", []))), str(resent)]))
PY
}

# Kernel counters summed over the nodes: conntrack's invalid, insert_failed,
# drop, early_drop, and packets kube-proxy dropped as ctstate INVALID; then
# the neighbour tables' (one per family, shared by every network namespace of
# the machine): resolutions that failed, forced garbage collections (more
# than gc_thresh2 entries) and entries refused because the table was full.
counters() {
  neighbour_counters
  local n
  for n in "${NODES[@]}"; do
    ip netns exec "$n" conntrack -S 2>/dev/null || true
    ip netns exec "$n" iptables -L KUBE-FORWARD -v -n -x 2>/dev/null | awk '/ctstate INVALID/ {print "kube_invalid_dropped=" $1}'
  done | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^(invalid|insert_failed|drop|early_drop|kube_invalid_dropped)=/) {split($i, a, "="); s[a[1]] += a[2]}}
    END {printf "invalid=%d insert_failed=%d drop=%d early_drop=%d kube_invalid_dropped=%d\n", s["invalid"], s["insert_failed"], s["drop"], s["early_drop"], s["kube_invalid_dropped"]}'
}
neighbour_counters() { # "arp_res_failed=N ... nd_table_fulls=N " (per-CPU rows in hex, summed)
  python3 -c '
wanted = {"res_failed": "res_failed", "forced_gc_runs": "forced_gc", "table_fulls": "table_fulls"}
out = []
for table, short in (("arp_cache", "arp"), ("ndisc_cache", "nd")):
    rows = [r.split() for r in open("/proc/net/stat/" + table).read().splitlines()]
    for i, name in enumerate(rows[0]):
        if name in wanted:
            out.append(f"{short}_{wanted[name]}={sum(int(r[i], 16) for r in rows[1:] if r)}")
print(" ".join(out), end=" ")'
}
untranslated() { # RUN_DIR -> TCP flows to a Service address left untranslated, from ephemeral ports
  local range; range=$(ip netns exec "${NODES[0]}" cat /proc/sys/net/ipv4/ip_local_port_range)
  cat "$1"/conntrack-*.log 2>/dev/null | python3 -c '
import ipaddress, re, sys
low, high = map(int, sys.argv[1].split())
services = [ipaddress.ip_network(c) for c in sys.argv[2].split(",")]
flow = re.compile(r"\[NEW\].* src=(\S+) dst=(\S+) sport=(\d+) dport=\d+ \[UNREPLIED\] src=(\S+) ")
n = 0
for line in sys.stdin:
    m = flow.search(line)
    if m and m[4] == m[2] and low <= int(m[3]) <= high:
        dst = ipaddress.ip_address(m[2])
        n += any(dst.version == s.version and dst in s for s in services)
print(n)' "$range" "$(service_cidrs)"
}
delta() { # BEFORE AFTER -> the counters that grew, or "-"
  python3 -c '
import sys
b = dict(kv.split("=") for kv in sys.argv[1].split())
a = dict(kv.split("=") for kv in sys.argv[2].split())
grew = [f"{k}+{int(a[k]) - int(b.get(k, 0))}" for k in a if int(a[k]) > int(b.get(k, 0))]
print(" ".join(grew) or "-")' "$1" "$2"
}
cpu_ticks() { # total busy steal, from /proc/stat's cpu line
  awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t, t - $5 - $6, $9}' /proc/stat
}
cpu_share() { # ticks before, ticks after -> "busy=N% steal=N%"
  read -r t0 b0 s0 <<<"$1"
  read -r t1 b1 s1 <<<"$2"
  awk -v t=$((t1 - t0)) -v b=$((b1 - b0)) -v s=$((s1 - s0)) \
    'BEGIN {if (t == 0) t = 1; printf "busy=%d%% steal=%d%%\n", 100 * b / t, 100 * s / t}'
}
log_sizes() { # "file size" per component log, to keep only what a run appended
  for f in "$LOGS"/*.log; do echo "$f $(stat -c %s "$f")"; done
}

walls=() false_failures=0 failed_runs=0 exec_lost_total=0
for ((i = 1; i <= runs; i++)); do
  dir=$(mktemp -d /var/tmp/netconform-soak-run.XXXX)
  before=$(counters) ticks=$(cpu_ticks) sizes=$(log_sizes)
  pids=()
  if [[ $events == 1 ]]; then
    for n in "${NODES[@]}"; do
      # A large socket buffer: with the default one a busy node loses events
      # (ENOBUFS, which conntrack reports on stderr, kept beside the log).
      ip netns exec "$n" conntrack -E -b 8388608 -o timestamp -p tcp >"$dir/conntrack-$n.log" 2>"$dir/conntrack-$n.err" &
      pids+=($!)
      # The node's neighbour table as it changes: a "No route to host" is a
      # resolution that failed (INCOMPLETE, then FAILED) on some node.
      ip netns exec "$n" ip -ts monitor neigh >"$dir/neigh-$n.log" 2>&1 &
      pids+=($!)
    done
  fi
  start=$SECONDS
  (cd "$root" && NETCONFORM_REQUIRE_CLUSTER=1 NETCONFORM_REPORT_DIR=$dir NETCONFORM_SCENARIOS=$frozen/scenarios \
    "$frozen/conformance" >"$dir/output.log" 2>&1) || true
  wall=$((SECONDS - start))
  ((${#pids[@]} == 0)) || kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  kernel=$(delta "$before" "$(counters)") cpu=$(cpu_share "$ticks" "$(cpu_ticks)")
  walls+=("$wall")
  IFS=$'\t' read -r checks failed lost tcp udp names exec_lost resent < <(summarise "$dir/results.json")
  untranslated=-
  [[ $events == 1 ]] && untranslated=$(untranslated "$dir")
  line=$(printf '%s\t%s\t%s\t%s/%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(hostname)" "$commit" \
    "$i" "$runs" "$wall" "$checks" "$failed" "$lost" "$tcp" "$udp" "$names" "$kernel" "$cpu" "$exec_lost" "$network" "$resent" "$untranslated")
  echo "$line" >>"$out"
  exec_lost_total=$((exec_lost_total + ${exec_lost:-0}))
  echo "soak run $i/$runs: ${wall}s, $checks checks, $failed failed$([[ $names != - ]] && echo " ($names)"), $lost DNS queries lost, kernel counters: $kernel, cpu $cpu, exec outputs lost and read from the kept copy: $exec_lost, connects with a resent SYN: $resent, untranslated flows from ephemeral ports: $untranslated" >&2
  if ((failed > 0)); then
    false_failures=$((false_failures + failed)) failed_runs=$((failed_runs + 1))
    stamp=$(date -u +%Y%m%dT%H%M%S)-$i
    cp "$dir/output.log" "$keep/run-$stamp.log"
    cp "$dir/results.json" "$keep/run-$stamp.json" 2>/dev/null || true
    for f in "$dir"/conntrack-*.log "$dir"/conntrack-*.err "$dir"/neigh-*.log; do
      [[ -f $f ]] && gzip -c "$f" >"$keep/run-$stamp-$(basename "$f").gz"
    done
    mkdir -p "$keep/run-$stamp-logs"
    while read -r f size; do
      tail -c +$((size + 1)) "$f" | gzip >"$keep/run-$stamp-logs/$(basename "$f").gz"
    done <<<"$sizes"
  fi
  rm -rf "$dir"
done
sorted=$(printf '%s\n' "${walls[@]}" | sort -n)
min=$(head -1 <<<"$sorted") max=$(tail -1 <<<"$sorted") median=$(sed -n "$(((runs + 1) / 2))p" <<<"$sorted")
echo "soak ($network): $runs runs, $failed_runs with a failure, $false_failures false failures, $exec_lost_total exec outputs lost by the transport (read from the kept copy); wall min ${min}s median ${median}s max ${max}s" >&2
printf '%s\t%s\tsoak-%s-runs\tfalse_failures=%s failed_runs=%s exec_outputs_lost=%s %s\twall min=%ss median=%ss max=%ss\t%s\n' \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(hostname)" "$runs" "$false_failures" "$failed_runs" "$exec_lost_total" "$network" "$min" "$median" "$max" \
  "$([[ $false_failures == 0 ]] && echo within || echo OVER)" >>"$out"
((false_failures == 0))
