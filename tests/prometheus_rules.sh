#!/usr/bin/env bash
# The daemon's own Prometheus alerting rules pass promtool's checks and unit tests.
set -euo pipefail
root=$1
cd "$root/docs/prometheus"
promtool check rules guardwatch-health.rules.yaml
promtool test rules guardwatch-health.test.yaml
