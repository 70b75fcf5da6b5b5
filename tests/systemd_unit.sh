#!/usr/bin/env bash
# The systemd unit and the install target:
#  - `cmake --install` into a DESTDIR puts the binary, the unit (paths rewritten for the prefix),
#    the sample config, editable rules and the shipped data where they belong; a second install
#    keeps edited config files;
#  - `systemd-analyze verify` accepts the installed unit, and `systemd-analyze security` rates
#    it 2.0 or lower ("OK") — both offline, no running systemd needed;
#  - the installed binary finds its data next to itself and the installed config passes
#    `guardwatch check` (with the rules path pointed into the DESTDIR).
set -euo pipefail
build=$1 src=$2
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
DESTDIR=$dest cmake --install "$build" >/dev/null
etc=$dest$( [ "$prefix" = /usr ] && echo /etc || echo "$prefix/etc")/guardwatch
unit=$dest$prefix/lib/systemd/system/guardwatch.service
for f in "$dest$prefix/bin/guardwatch" "$unit" "$etc/guardwatch.yaml" "$etc/rules/guardrails.yaml" \
         "$dest$prefix/share/guardwatch/rules/lexicon/refusal.yaml" "$dest$prefix/share/guardwatch/grafana/guardwatch.json"; do
  [ -f "$f" ] || { echo "FAIL: not installed: $f"; exit 1; }
done
grep -q "^ExecStart=$prefix/bin/guardwatch run --config ${etc#$dest}/guardwatch.yaml$" "$unit" \
  || { echo "FAIL: ExecStart not rewritten for prefix $prefix:"; grep ExecStart "$unit"; exit 1; }
echo "# edited" >> "$etc/guardwatch.yaml"
DESTDIR=$dest cmake --install "$build" >/dev/null
grep -q "^# edited" "$etc/guardwatch.yaml" || { echo "FAIL: reinstall overwrote the edited config"; exit 1; }
echo "ok: cmake --install layout under $prefix; edited config kept on reinstall"

# verify resolves ExecStart= on this host: point it at the DESTDIR copy.
sed "s#$prefix/bin/guardwatch#$dest$prefix/bin/guardwatch#g" "$unit" > "$dest/guardwatch.service"
out=$(systemd-analyze verify "$dest/guardwatch.service" 2>&1) || { echo "FAIL: systemd-analyze verify"; echo "$out"; exit 1; }
[ -z "$out" ] || { echo "FAIL: systemd-analyze verify complains:"; echo "$out"; exit 1; }
echo "ok: systemd-analyze verify"
# --threshold is on the 0-100 scale behind the printed 0-10 level: 20 means 2.0.
sec=$(systemd-analyze security --offline=true --threshold=20 "$dest/guardwatch.service" 2>&1) \
  || { echo "FAIL: systemd-analyze security over 2.0:"; echo "$sec" | tail -30; exit 1; }
echo "ok: $(echo "$sec" | grep 'Overall exposure')"

sed -i "s#${etc#$dest}/rules#$etc/rules#" "$etc/guardwatch.yaml"
"$dest$prefix/bin/guardwatch" check --config "$etc/guardwatch.yaml" 2>/dev/null | grep -v "^ok   kafka" \
  | tee "$dest/check.out"
grep -q "^ok   rules" "$dest/check.out" && grep -q "^ok   lexicons" "$dest/check.out" || { echo "FAIL: installed config does not check"; exit 1; }
echo "ok: the installed binary checks the installed config with its installed data"
