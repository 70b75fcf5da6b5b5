#!/usr/bin/env bash
# docs/configuration.md is generated from the option table; fail when it is stale.
set -euo pipefail
bin=$1 root=$2
if ! diff -u "$root/docs/configuration.md" <("$bin" config-reference); then
  echo "docs/configuration.md is stale: run '$bin config-reference > docs/configuration.md'" >&2
  exit 1
fi
