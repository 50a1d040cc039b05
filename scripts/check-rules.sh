#!/usr/bin/env bash
# Checks memfleet's Prometheus setup with promtool (`npm run test:rules`; the test command runs it
# too): infra/prometheus/prometheus.yml, the alert and recording rules, and the rules' unit tests
# in infra/prometheus/tests, one promtool run per test file. Ends with mocha's summary lines
# ("  N passing", "  N failing", counting test files), which the test command adds up.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib/system-deps.sh"
ensure_promtool
cd "$MEMFLEET_ROOT/infra/prometheus"

log "==> promtool check config prometheus.yml"
promtool check config prometheus.yml
log "==> promtool check rules rules/*.yml"
promtool check rules rules/*.yml

passing=0
failing=0
for file in tests/*.yml; do
  log "==> promtool test rules $file"
  if promtool test rules "$file"; then
    passing=$((passing + 1))
  else
    failing=$((failing + 1))
  fi
done
echo
echo "  ${passing} passing (promtool test rules files)"
if [[ $failing -gt 0 ]]; then
  echo "  ${failing} failing"
  exit 1
fi
