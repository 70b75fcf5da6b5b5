#!/usr/bin/env bash
# The Containerfile, as far as a machine without a container engine (this CI's) can take it:
#  - the build stage's own script, scripts/build-release, builds, installs into a DESTDIR and
#    smoke-tests the install (the same command the Containerfile RUNs, on the same Debian);
#  - scripts/runtime-packages maps every shared library of that binary to an apt package (the
#    runtime stage installs exactly that list);
#  - the installed binary runs as the image's user (65532, the chart's runAsUser), finds its data
#    next to itself and replays a file; every path the Containerfile copies exists.
set -euo pipefail
binary=$1 src=$2 build=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
grep -q "^RUN scripts/setup --build-only" "$src/Containerfile" && grep -q "scripts/build-release /out$" "$src/Containerfile" \
  || { echo "FAIL: the Containerfile does not build with scripts/setup --build-only and scripts/build-release"; exit 1; }
BUILD_DIR=$build/container-build "$src/scripts/build-release" "$work/out"
# One apt-cache call for the list (one per package took 46 s). It exits 0 even when a name is
# unknown, so every name must come back as a "Package:" stanza.
unknown=$(comm -23 <(sort -u "$work/out/runtime-packages.txt") \
  <(apt-cache show $(cat "$work/out/runtime-packages.txt") 2>/dev/null | sed -n 's/^Package: //p' | sort -u))
[ -z "$unknown" ] || { echo "FAIL: apt has no package" $unknown; exit 1; }
echo "ok: $(wc -l < "$work/out/runtime-packages.txt") runtime packages, all known to apt"
for f in usr/bin/guardwatch etc/guardwatch/guardwatch.yaml etc/guardwatch/rules/guardrails.yaml usr/share/guardwatch/rules/lexicon/refusal.yaml; do
  [ -e "$work/out/$f" ] || { echo "FAIL: the image would lack /$f"; exit 1; }
done
uid=$(sed -n 's/^USER \([0-9]*\):.*/\1/p' "$src/Containerfile")
grep -q "runAsUser: $uid$" "$src/helm/guardwatch/values.yaml" || { echo "FAIL: image user $uid != chart runAsUser"; exit 1; }
"$binary" generate --count 2000 -o "$work/in.jsonl" 2>/dev/null
chmod 644 "$work/in.jsonl"
as_user=()
if [ "$(id -u)" = 0 ]; then as_user=(setpriv --reuid="$uid" --regid="$uid" --clear-groups); fi
env -u GUARDWATCH_DATA_DIR "${as_user[@]}" "$work/out/usr/bin/guardwatch" replay --input "$work/in.jsonl" --report json \
    > "$work/report.json" 2> "$work/replay.err" \
  || { echo "FAIL: the installed binary, as uid $uid, could not replay:"; cat "$work/replay.err"; exit 1; }
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["records"]["applied"] == 2000, r["records"]' "$work/report.json"
echo "ok: the installed binary runs as uid $uid and replays 2000 records with its installed data"
