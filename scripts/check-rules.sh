#!/usr/bin/env bash
# Checks memfleet's Prometheus setup with promtool (`npm run test:rules`; the test command runs it
# too): infra/prometheus/prometheus.yml, the alert and recording rules, the PromQL of the Grafana
# dashboard, and the rules' unit tests in infra/prometheus/tests, one promtool run per test file. Ends with mocha's summary lines
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

# The dashboard's queries must parse too: each becomes a recording rule in a scratch file, with
# Grafana's variables replaced by values PromQL accepts.
queries="$(mktemp --suffix=.yml)"
trap 'rm -f "$queries"' EXIT
# shellcheck disable=SC2016 # JavaScript, not shell
node -e '
  const fs = require("node:fs");
  const dashboard = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  const exprs = [];
  const walk = (panels) => {
    for (const p of panels ?? []) {
      for (const t of p.targets ?? []) if (t.expr) exprs.push(t.expr);
      walk(p.panels);
    }
  };
  walk(dashboard.panels);
  const rules = exprs.map((expr, i) => ({
    record: `dashboard:query_${i}`,
    expr: expr.replace(/\$__(rate_interval|interval|range)/g, "5m").replace(/\$\w+/g, ".*"),
  }));
  if (rules.length === 0) throw new Error("no queries found in the dashboard");
  fs.writeFileSync(process.argv[2], JSON.stringify({ groups: [{ name: "dashboard", rules }] }));
' "$MEMFLEET_ROOT/infra/grafana/memfleet-dashboard.json" "$queries"
log "==> promtool check rules (the queries of infra/grafana/memfleet-dashboard.json)"
promtool check rules "$queries"

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
