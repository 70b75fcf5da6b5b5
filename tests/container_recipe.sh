#!/usr/bin/env bash
# What can be checked of the Containerfile without a container engine (this CI has none):
#  - scripts/runtime-packages maps every shared library of the built binary to a Debian package
#    that apt can install (the runtime stage installs exactly that list);
#  - every file the Containerfile copies from the repository exists;
#  - the image's user id is the one the Helm chart runs as.
set -euo pipefail
binary=$1 src=$2
pkgs=$("$src/scripts/runtime-packages" "$binary")
[ -n "$pkgs" ] || { echo "FAIL: no runtime packages found"; exit 1; }
for p in $pkgs; do
  apt-cache show "$p" >/dev/null 2>&1 || { echo "FAIL: apt has no package $p"; exit 1; }
done
echo "ok: $(echo "$pkgs" | wc -l) runtime packages, all installable: $(echo $pkgs | head -c 120)..."
grep -E '^COPY [^-]' "$src/Containerfile" | while read -r _ srcs; do
  for f in ${srcs% *}; do [ "$f" = . ] || [ -e "$src/$f" ] || { echo "FAIL: Containerfile copies missing $f"; exit 1; }; done
done
uid=$(sed -n 's/^USER \([0-9]*\):.*/\1/p' "$src/Containerfile")
grep -q "runAsUser: $uid$" "$src/helm/guardwatch/values.yaml" || { echo "FAIL: image user $uid != chart runAsUser"; exit 1; }
grep -q -- "--build-only" "$src/Containerfile" || { echo "FAIL: the build stage does not use scripts/setup"; exit 1; }
echo "ok: Containerfile copies exist, builds with scripts/setup, runs as $uid like the chart"
