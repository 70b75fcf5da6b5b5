#!/usr/bin/env bash
# The Helm chart, for the default values and for ci/all-on-values.yaml (every option on):
#  - helm lint, helm template;
#  - the rendered manifests validate (kubeconform -strict) against JSON schemas made offline
#    from Kubernetes' OpenAPI documents and prometheus-operator's CRDs (tests/helm/make_schemas.py);
#  - a manifest with a misspelt field is rejected (the validation bites);
#  - the rendered guardwatch.yaml and rules pass `guardwatch check`;
#  - the chart's copies of the rules, dashboard and health rules equal the repository's.
# helm, kubeconform and the schema sources come from the Go module proxy, pinned, cached
# (scripts/helm-tools).
set -euo pipefail
binary=$1 src=$2
# helm, kubeconform and the schemas (built or fetched once, cached; scripts/test may have started
# this in the background already, and then this waits for it).
tools=$("$src/scripts/helm-tools") || { echo "FAIL: scripts/helm-tools could not provide helm, kubeconform and the schemas"; exit 1; }
helm=$(sed -n 's/^helm=//p' <<<"$tools") kubeconform=$(sed -n 's/^kubeconform=//p' <<<"$tools") schemas=$(sed -n 's/^schemas=//p' <<<"$tools")
KUBE_VERSION=$(sed -n 's/^kube_version=//p' <<<"$tools")  # the Kubernetes version the schemas describe
chart=$src/helm/guardwatch
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
validate() { "$kubeconform" -strict -summary -schema-location "$schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json" "$@"; }

for f in "rules/guardrails.yaml:files/guardrails.yaml" "docs/grafana/guardwatch.json:files/guardwatch-dashboard.json" \
         "docs/prometheus/guardwatch-health.rules.yaml:files/guardwatch-health.rules.yaml"; do
  cmp -s "$src/${f%%:*}" "$chart/${f#*:}" || { echo "FAIL: helm/guardwatch/${f#*:} differs from ${f%%:*}: cp $src/${f%%:*} $chart/${f#*:}"; exit 1; }
done
echo "ok: the chart's copies of rules, dashboard and health rules are current"

for values in "" "$chart/ci/all-on-values.yaml"; do
  name=${values:+all-on}; name=${name:-default}
  args=(--kube-version "$KUBE_VERSION"); [ -n "$values" ] && args+=(-f "$values")
  "$helm" lint --strict "$chart" "${args[@]}" >"$work/lint.out" || { cat "$work/lint.out"; echo "FAIL: helm lint ($name)"; exit 1; }
  "$helm" template gw "$chart" --namespace obs "${args[@]}" >"$work/$name.yaml"
  validate "$work/$name.yaml" | tee "$work/kc.out"
  grep -q "Invalid: 0, Errors: 0, Skipped: 0" "$work/kc.out" || { echo "FAIL: kubeconform ($name)"; exit 1; }
  # The config and rules the pods would get pass guardwatch's own check.
  mkdir -p "$work/$name/rules"
  python3 - "$work/$name.yaml" "$work/$name" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = sorted(d["kind"] for d in docs)
for d in docs:
    if d["kind"] == "ConfigMap" and "guardwatch.yaml" in d["data"]:
        cfg = d["data"]["guardwatch.yaml"].replace("/etc/guardwatch/rules", sys.argv[2] + "/rules")
        open(sys.argv[2] + "/guardwatch.yaml", "w").write(cfg)
    elif d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-rules"):
        for k, v in d["data"].items():
            open(sys.argv[2] + "/rules/" + k, "w").write(v)
print("   rendered:", ", ".join(kinds))
PY
  KAFKA_USERNAME=u KAFKA_PASSWORD=p POD_NAME=guardwatch-all-0 "$binary" check --config "$work/$name/guardwatch.yaml" 2>/dev/null | grep -v "^ok   kafka" >"$work/check.out" \
    || { cat "$work/check.out"; echo "FAIL: rendered config does not pass guardwatch check ($name)"; exit 1; }
  grep -q "^ok   rules" "$work/check.out" || { cat "$work/check.out"; echo "FAIL: rendered rules ($name)"; exit 1; }
  echo "ok: $name values: helm lint, template, kubeconform -strict, guardwatch check of the rendered config"
done
grep -q "kind: ServiceMonitor" "$work/all-on.yaml" && grep -q "kind: PrometheusRule" "$work/all-on.yaml" \
  && grep -q "kind: NetworkPolicy" "$work/all-on.yaml" || { echo "FAIL: all-on values did not render every optional object"; exit 1; }
# staticMembership: a StatefulSet whose pods are static group members named after themselves; by
# default a Deployment with no group.instance.id (a Deployment's pod names change at every restart).
python3 - "$work/all-on.yaml" "$work/default.yaml" <<'PY' || { echo "FAIL: staticMembership"; exit 1; }
import sys, yaml
def load(path):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    work = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    assert len(work) == 1, [d["kind"] for d in work]
    cfg = next(yaml.safe_load(d["data"]["guardwatch.yaml"]) for d in docs if d["kind"] == "ConfigMap" and "guardwatch.yaml" in d["data"])
    return work[0], cfg
w, cfg = load(sys.argv[1])
assert w["kind"] == "StatefulSet", w["kind"]
assert cfg["kafka"]["properties"]["group.instance.id"] == "${POD_NAME}", cfg["kafka"]["properties"]
env = {e["name"]: e for e in w["spec"]["template"]["spec"]["containers"][0]["env"]}
assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name", env.get("POD_NAME")
assert "KAFKA_USERNAME" in env and "TZ" in env, sorted(env)  # the other variables stay
w, cfg = load(sys.argv[2])
assert w["kind"] == "Deployment", w["kind"]
assert "group.instance.id" not in cfg.get("kafka", {}).get("properties", {}), cfg["kafka"]
PY
echo "ok: staticMembership renders a StatefulSet of static members (group.instance.id: \${POD_NAME}); the default a Deployment"

# The validation bites: a misspelt securityContext field must be rejected.
"$helm" template gw "$chart" --kube-version "$KUBE_VERSION" --set-json 'securityContext={"readOnlyRootFileSystem":true}' >"$work/bad.yaml"
if validate "$work/bad.yaml" >"$work/bad.out" 2>&1; then cat "$work/bad.out"; echo "FAIL: a misspelt field passed validation"; exit 1; fi
grep -q "readOnlyRootFileSystem" "$work/bad.out" || { cat "$work/bad.out"; exit 1; }
echo "ok: a misspelt field is rejected by the schemas"
