#!/bin/sh
# The runner image's entrypoint (in-cluster mode): the suite, the conformance
# report to the log, then the reports kept for `kubectl cp` for
# NETCONFORM_HOLD_SECONDS (default 600) or until "$dir/fetched" exists.
dir=${NETCONFORM_REPORT_DIR:-/reports}
hold=${NETCONFORM_HOLD_SECONDS:-600}
/netconform run --scenarios /scenarios --report-dir "$dir" "$@"
rc=$?
echo "netconform: exit code $rc; $dir/conformance.json:"
cat "$dir/conformance.json" 2>/dev/null || echo "(none written)"
echo
echo "netconform: reports in $dir (kubectl cp <namespace>/<pod>:$dir ./reports);" \
  "kept ${hold}s or until $dir/fetched exists"
i=0
while [ "$i" -lt "$hold" ] && [ ! -e "$dir/fetched" ]; do
  sleep 1
  i=$((i + 1))
done
exit "$rc"
