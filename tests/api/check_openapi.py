#!/usr/bin/env python3
"""The OpenAPI document and the server's route table name the same routes.

Usage: check_openapi.py PARLEYD OPENAPI_YAML
Fails when a route of `parleyd routes` is missing from the document, when the
document has an operation the server does not serve, or when a $ref points
nowhere."""
import subprocess
import sys

import yaml

parleyd, doc_path = sys.argv[1], sys.argv[2]
out = subprocess.run([parleyd, "routes"], check=True, capture_output=True, text=True).stdout
served = {tuple(line.split(" ", 1)) for line in out.splitlines() if line.strip()}
with open(doc_path) as f:
    doc = yaml.safe_load(f)
methods = {"get", "put", "post", "patch", "delete", "options", "head"}
documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item if m in methods}


def refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield v
            else:
                yield from refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from refs(v)


broken = []
for ref in refs(doc):
    target = doc
    for part in ref.lstrip("#/").split("/"):
        target = target.get(part) if isinstance(target, dict) else None
    if target is None:
        broken.append(ref)

ok = True
for m, p in sorted(served - documented):
    print(f"served but not documented: {m} {p}")
    ok = False
for m, p in sorted(documented - served):
    print(f"documented but not served: {m} {p}")
    ok = False
for ref in broken:
    print(f"broken $ref: {ref}")
    ok = False
if len(served) < 10:
    print(f"only {len(served)} routes served: the route table was not read")
    ok = False
print(f"{len(served)} routes served, {len(documented)} documented")
sys.exit(0 if ok else 1)
