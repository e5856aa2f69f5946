# shellcheck shell=bash
# `down`: stops what `up` started, by the PIDs it recorded (and, for containers,
# by the cgroups and mount namespaces only the testbed's nodes use), then removes
# namespaces, links, iptables rules, cgroups and state. The build cache stays.

# pids_in_cgroup_tree DIR: every PID in a cgroup directory and below it.
pids_in_cgroup_tree() {
  [[ -d $1 ]] || return 0
  find "$1" -name cgroup.procs -exec cat {} + 2>/dev/null
}

# rm_cgroup_tree DIR: removes a cgroup directory, children first.
rm_cgroup_tree() {
  [[ -d $1 ]] || return 0
  find "$1" -depth -type d -exec rmdir {} \; 2>/dev/null || true
}

# pids_in_mount_ns NS_LINK: processes whose mount namespace is NS_LINK (mnt:[inode]).
pids_in_mount_ns() {
  local want=$1 p
  for p in /proc/[0-9]*; do
    [[ $(readlink "$p/ns/mnt" 2>/dev/null) == "$want" ]] && echo "${p#/proc/}"
  done
  return 0
}

teardown() {
  local started=$SECONDS n pid f
  # TERM every recorded process at once (node holders last), containers by their
  # node's cgroup, then KILL whatever outlived a bounded wait.
  local pids=()
  for f in "$PIDS"/*.pid; do
    [[ -f $f && $f != *-holder.pid ]] || continue
    pid=$(recorded_pid "$(basename "$f" .pid)") || continue
    kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
  done
  for n in "${NODES[@]}"; do
    for pid in $(pids_in_cgroup_tree "/sys/fs/cgroup/pids/$(node_cgroup "$n")"); do
      kill -KILL "$pid" 2>/dev/null || true
    done
  done
  local i alive
  for ((i = 0; i < 100; i++)); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  # containerd's shims outlive containerd; they run in the node's mount namespace.
  for n in "${NODES[@]}"; do
    local holder mntns
    holder=$(recorded_pid "$n-holder") || continue
    if mntns=$(readlink "/proc/$holder/ns/mnt" 2>/dev/null); then
      for pid in $(pids_in_mount_ns "$mntns"); do kill -KILL "$pid" 2>/dev/null || true; done
    fi
  done
  for n in "${NODES[@]}"; do
    pid=$(recorded_pid "$n-holder") || continue
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done

  for n in "${NODES[@]}"; do
    local cg d; cg=$(node_cgroup "$n")
    for d in /sys/fs/cgroup/*/"$cg" /sys/fs/cgroup/"$cg"; do rm_cgroup_tree "$d"; done
    if [[ -f $(node_dir "$n")/created-host-dirs ]]; then
      while read -r d; do rmdir "$d" 2>/dev/null || true; done <"$(node_dir "$n")/created-host-dirs"
    fi
  done
  # Whatever still runs in a testbed namespace (a benchmark's conntrack logger,
  # a stray exec) would keep it, and its veth, alive after `ip netns del`.
  for n in "${NODES[@]}" "$OUTSIDE_NS"; do
    for pid in $(ip netns pids "$n" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$n" 2>/dev/null || true
  done
  for n in "${NODES[@]}"; do ip link del "${NODE_VETH[$n]}" 2>/dev/null || true; done
  ip link del nctb-out 2>/dev/null || true
  ip link del "$BRIDGE" 2>/dev/null || true
  while iptables -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment netconform-testbed -j ACCEPT 2>/dev/null; do :; done
  while ip6tables -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment netconform-testbed -j ACCEPT 2>/dev/null; do :; done
  # Every mount the testbed made lived in a node's mount namespace, which is gone
  # with its last process: refuse to delete state that is still mounted somewhere.
  if grep -q " $NC_STATE" /proc/self/mountinfo; then
    die "mounts under $NC_STATE remain (grep $NC_STATE /proc/self/mountinfo); state kept"
  fi
  rm -rf "$NC_STATE"
  log "testbed is down ($((SECONDS - started))s)"
}
