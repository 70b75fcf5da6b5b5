#!/usr/bin/env python3
"""Writes kubeconform's "standalone-strict" JSON schemas for the kinds the Helm chart renders,
offline, from the sources Kubernetes and prometheus-operator publish:
  - the Kubernetes OpenAPI v3 documents in k8s.io/kubernetes (api/openapi-spec/v3), with every
    $ref inlined and unknown fields forbidden (additionalProperties: false), as kubeconform's
    published schemas are made by openapi2jsonschema --strict;
  - the prometheus-operator CRDs (example/prometheus-operator-crd), openAPIV3Schema likewise.
Usage: make_schemas.py K8S_MODULE_DIR PROMETHEUS_OPERATOR_MODULE_DIR OUT_DIR
Files are named {kind}-{group prefix}-{version}.json (kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}).
"""
import copy
import json
import os
import sys

import yaml

k8s_dir, po_dir, out = sys.argv[1:4]
os.makedirs(out, exist_ok=True)

# kind, OpenAPI document, schema name
K8S = [
    ("Deployment", "apis__apps__v1_openapi.json", "io.k8s.api.apps.v1.Deployment", "apps", "v1"),
    ("StatefulSet", "apis__apps__v1_openapi.json", "io.k8s.api.apps.v1.StatefulSet", "apps", "v1"),
    ("Service", "api__v1_openapi.json", "io.k8s.api.core.v1.Service", "", "v1"),
    ("ConfigMap", "api__v1_openapi.json", "io.k8s.api.core.v1.ConfigMap", "", "v1"),
    ("Secret", "api__v1_openapi.json", "io.k8s.api.core.v1.Secret", "", "v1"),
    ("ServiceAccount", "api__v1_openapi.json", "io.k8s.api.core.v1.ServiceAccount", "", "v1"),
    ("PodDisruptionBudget", "apis__policy__v1_openapi.json", "io.k8s.api.policy.v1.PodDisruptionBudget", "policy", "v1"),
    ("NetworkPolicy", "apis__networking.k8s.io__v1_openapi.json", "io.k8s.api.networking.v1.NetworkPolicy", "networking", "v1"),
]
CRDS = ["monitoring.coreos.com_servicemonitors.yaml", "monitoring.coreos.com_prometheusrules.yaml"]


def strict(node):
    """additionalProperties: false wherever an object lists its properties (openapi2jsonschema --strict)."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False
        for v in node.values():
            strict(v)
    elif isinstance(node, list):
        for v in node:
            strict(v)
    return node


def nullable(node):
    """OpenAPI's nullable: true becomes a JSON-schema type that admits null."""
    if isinstance(node, dict):
        if node.pop("nullable", False) and "type" in node:
            node["type"] = [node["type"], "null"] if isinstance(node["type"], str) else node["type"] + ["null"]
        for v in node.values():
            nullable(v)
    elif isinstance(node, list):
        for v in node:
            nullable(v)
    return node


def inline(node, schemas, depth=0):
    if depth > 60:
        return {}
    if isinstance(node, dict):
        if "$ref" in node:
            target = copy.deepcopy(schemas[node["$ref"].split("/")[-1]])
            rest = {k: v for k, v in node.items() if k != "$ref"}
            target.update(rest)
            return inline(target, schemas, depth + 1)
        if "allOf" in node and len(node["allOf"]) == 1:  # {allOf: [{$ref}], description} wrappers
            merged = inline(node["allOf"][0], schemas, depth + 1)
            for k, v in node.items():
                if k != "allOf":
                    merged[k] = inline(v, schemas, depth + 1)
            return merged
        return {k: inline(v, schemas, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [inline(v, schemas, depth + 1) for v in node]
    return node


def write(kind, group, version, schema):
    suffix = ("-" + group.split(".")[0] if group else "") + "-" + version
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    path = os.path.join(out, f"{kind.lower()}{suffix}.json")
    with open(path, "w") as f:
        json.dump(schema, f)
    return path


docs = {}
for kind, doc, name, group, version in K8S:
    if doc not in docs:
        docs[doc] = json.load(open(os.path.join(k8s_dir, "api/openapi-spec/v3", doc)))["components"]["schemas"]
    schema = nullable(strict(inline(copy.deepcopy(docs[doc][name]), docs[doc])))
    # apiVersion and kind are pinned, as in the published schemas.
    schema["properties"]["apiVersion"]["enum"] = [f"{group + '.k8s.io/' if group == 'networking' else (group + '/' if group else '')}{version}"]
    schema["properties"]["kind"]["enum"] = [kind]
    print("wrote", write(kind, group, version, schema))

for crd_file in CRDS:
    crd = yaml.safe_load(open(os.path.join(po_dir, "example/prometheus-operator-crd", crd_file)))
    for v in crd["spec"]["versions"]:
        schema = copy.deepcopy(v["schema"]["openAPIV3Schema"])
        schema = nullable(strict(schema))
        schema.setdefault("properties", {})
        schema["properties"]["apiVersion"] = {"type": "string", "enum": [f"{crd['spec']['group']}/{v['name']}"]}
        schema["properties"]["kind"] = {"type": "string", "enum": [crd["spec"]["names"]["kind"]]}
        schema["properties"].setdefault("metadata", {"type": "object"})
        print("wrote", write(crd["spec"]["names"]["kind"], crd["spec"]["group"], v["name"], schema))
