#!/usr/bin/env bash
# Generated files must match what the code generates: docs/configuration.md (option table) and
# docs/grafana/guardwatch.json (`guardwatch dashboard` over the shipped rules).
set -euo pipefail
bin=$1 root=$2
if ! diff -u "$root/docs/configuration.md" <("$bin" config-reference); then
  echo "docs/configuration.md is stale: run '$bin config-reference > docs/configuration.md'" >&2
  exit 1
fi
if ! diff -u "$root/docs/grafana/guardwatch.json" <("$bin" dashboard --rules "$root/rules/guardrails.yaml"); then
  echo "docs/grafana/guardwatch.json is stale: run '$bin dashboard --rules rules/guardrails.yaml > docs/grafana/guardwatch.json'" >&2
  exit 1
fi
