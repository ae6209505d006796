"""Vendor the part of KubeRay's RayJob CRD schema that deploy/kuberay/rayjob.yaml uses, for its test.

    python scripts/vendor_kuberay_schema.py CRD_YAML SOURCE_NOTE > tests/submit/kuberay/rayjob_schema.json

CRD_YAML is ray-operator/config/crd/bases/ray.io_rayjobs.yaml of github.com/ray-project/kuberay (Apache-2.0).
The whole schema is 1.4 MB (every pod field, three times). Kept: the full schema (descriptions dropped) of
every node the manifest reaches, and at those nodes every property's name and type, so a misspelt or
unknown key, a wrong type, a missing required key or a bad enum value is still caught; a property the
manifest does not use keeps only its type.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

MANIFEST = Path(__file__).resolve().parent.parent / "deploy" / "kuberay" / "rayjob.yaml"
SHALLOW_KEYS = ("type", "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields")


def shallow(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: schema[k] for k in SHALLOW_KEYS if k in schema}


def prune(schema: dict[str, Any], value: Any) -> dict[str, Any]:
    """`schema` cut down to what validating `value` needs."""
    out = {k: v for k, v in schema.items() if k not in ("description", "properties", "items")}
    if isinstance(value, dict) and "properties" in schema:
        out["properties"] = {
            name: prune(sub, value[name]) if name in value else shallow(sub)
            for name, sub in schema["properties"].items()
        }
    if isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        extra = schema["additionalProperties"]
        merged_extra: dict[str, Any] = {}
        for item in value.values():
            merged_extra = merge(merged_extra, prune(extra, item))
        out["additionalProperties"] = merged_extra or shallow(extra)
    if isinstance(value, list) and "items" in schema:
        merged: dict[str, Any] = {}
        for item in value:  # one schema for every item: the union of what each item reaches
            merged = merge(merged, prune(schema["items"], item))
        out["items"] = merged or shallow(schema["items"])
    return out


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The union of two pruned schemas of one node (a list's items, each pruned against one item)."""
    out = {**b, **a}
    if "properties" in a and "properties" in b:
        names = a["properties"].keys() | b["properties"].keys()
        out["properties"] = {n: merge(a["properties"].get(n, {}), b["properties"].get(n, {})) for n in names}
    for key in ("items", "additionalProperties"):
        if isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
            out[key] = merge(a[key], b[key])
    return out


def main() -> None:
    crd_path, source = sys.argv[1], sys.argv[2]
    crd = yaml.safe_load(Path(crd_path).read_text())
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    [rayjob] = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d.get("kind") == "RayJob"]
    schema = prune(version["schema"]["openAPIV3Schema"], rayjob)
    doc = {
        "source": source,
        "license": "Apache-2.0 (KubeRay; the text: tests/submit/kuberay/LICENSE-kuberay)",
        "made_by": "scripts/vendor_kuberay_schema.py",
        "openAPIV3Schema": schema,
    }
    json.dump(doc, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
