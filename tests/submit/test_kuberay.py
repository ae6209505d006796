"""deploy/kuberay/rayjob.yaml against KubeRay's RayJob CRD schema (no cluster needed), and its agreement
with `sbench submit` and the README.

The schema is the part of the CRD's openAPIV3Schema the manifest reaches (tests/submit/kuberay/, made by
scripts/vendor_kuberay_schema.py from KubeRay's ray.io_rayjobs.yaml, Apache-2.0, source commit inside):
types, required keys and enums by jsonschema, and unknown keys (which the API server would drop or, with
strict field validation, refuse) by a walk over the schema's properties.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import ray
import yaml

from sbench.config import load_config
from sbench.submit.jobspec import RuntimeEnvMode, job_python, run_entrypoint

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "deploy" / "kuberay" / "rayjob.yaml"
SCHEMA = json.loads((Path(__file__).parent / "kuberay" / "rayjob_schema.json").read_text())


def _docs() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(MANIFEST.read_text())}


def unknown_keys(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Keys of `value` that `schema` does not declare (where it declares its keys)."""
    out = []
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, sub in value.items():
            if props is not None and key in props:
                out += unknown_keys(sub, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                out += unknown_keys(sub, extra, f"{path}.{key}")
            elif props is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
                out.append(f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            out += unknown_keys(item, schema["items"], f"{path}[{i}]")
    return out


def problems(rayjob: dict[str, Any]) -> list[str]:
    schema = SCHEMA["openAPIV3Schema"]
    found = [
        f"{'.'.join(map(str, e.path))}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(rayjob)
    ]
    return found + [f"{key.lstrip('.')}: unknown key" for key in unknown_keys(rayjob, schema)]


def test_the_rayjob_validates_against_the_kuberay_crd_schema() -> None:
    rayjob = _docs()["RayJob"]
    assert rayjob["apiVersion"] == "ray.io/v1"
    assert problems(rayjob) == []


def test_the_check_catches_a_misspelt_key_a_wrong_type_and_a_missing_required_one() -> None:
    rayjob = _docs()["RayJob"]
    misspelt = copy.deepcopy(rayjob)
    misspelt["spec"]["entrypiont"] = misspelt["spec"].pop("entrypoint")
    assert problems(misspelt) == ["spec.entrypiont: unknown key"]
    wrong_type = copy.deepcopy(rayjob)
    wrong_type["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replicas"] = "two"
    assert any("replicas" in p and "is not of type 'integer'" in p for p in problems(wrong_type))
    no_image = copy.deepcopy(rayjob)
    del no_image["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["name"]
    assert any("'name' is a required property" in p for p in problems(no_image))


def test_the_rayjob_runs_what_sbench_submit_runs_on_the_pinned_ray() -> None:
    docs = _docs()
    spec = docs["RayJob"]["spec"]
    head = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in head["containers"][0]["volumeMounts"]}
    [key] = docs["ConfigMap"]["data"]
    config_file = f"{mounts['workload']}/{key}"
    expected = run_entrypoint(
        job_python(RuntimeEnvMode.INSTALLED), config_file, [], results_root=mounts["results"]
    )
    assert spec["entrypoint"] == expected
    volumes = {v["name"]: v for v in head["volumes"]}
    assert volumes["workload"]["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    claim = volumes["results"]["persistentVolumeClaim"]["claimName"]
    assert claim == docs["PersistentVolumeClaim"]["metadata"]["name"]
    assert spec["rayClusterSpec"]["rayVersion"] == ray.__version__
    dockerfile = (REPO / "deploy" / "kuberay" / "Dockerfile").read_text()
    assert f"FROM rayproject/ray:{ray.__version__}-py311" in dockerfile


def test_the_configmaps_workload_is_a_valid_sbench_config(tmp_path: Path) -> None:
    [(name, text)] = _docs()["ConfigMap"]["data"].items()
    path = tmp_path / name
    path.write_text(text)
    assert load_config(path).config.distributed is not None


def test_the_readmes_kuberay_commands_name_what_the_manifest_defines() -> None:
    section = (REPO / "README.md").read_text().split("### KubeRay", 1)[1].split("\n## ", 1)[0]
    block = section.split("```", 2)[1].replace("\\\n", " ")
    docs = _docs()
    words = [shlex.split(line.split("  #", 1)[0]) for line in block.strip().splitlines()]
    commands = {" ".join(w[:3]): w for w in words}
    assert (REPO / commands["docker build -f"][3]).is_file()
    create = commands["kubectl create configmap"]
    assert create[3] == docs["ConfigMap"]["metadata"]["name"]
    assert re.match(rf"--from-file={re.escape(next(iter(docs['ConfigMap']['data'])))}=", create[4])
    assert (REPO / commands["kubectl apply -f"][3]) == MANIFEST
    assert commands["kubectl get rayjob"][3] == docs["RayJob"]["metadata"]["name"]
    assert "--runtime-env installed" in section  # fetching uses the cluster's own sbench, as the job does
