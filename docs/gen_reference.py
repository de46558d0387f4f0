"""Regenerate SINGLE_TASK_API_REFERENCE.md: the hand-written head + one section per node.

    python docs/gen_reference.py        (or `make docs`, which first re-records examples)

Node sections come from the registry (params, outputs, reuse keys, upstream sources) and
from docs/examples/<node>.json, which tests/test_docs.py records from real responses.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

from nodes import registry  # noqa: E402
from nodes.spec import NodeSpec  # noqa: E402


def type_of(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        return " or ".join(type_of(s) for s in schema["anyOf"] if s.get("type") != "null")
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    if schema.get("type") == "array":
        return f"array of {type_of(schema.get('items', {}))}"
    if "$ref" in schema:
        return "object"
    return str(schema.get("type", "any"))


def params_table(spec: NodeSpec) -> str:
    schema = spec.params.model_json_schema()
    required = set(schema.get("required", [])) | {
        n for r in spec.required for n in r.split("|") if "|" not in r}
    rows = ["| param | type | default | description |", "|---|---|---|---|"]
    for name, prop in schema["properties"].items():
        if name in required:
            default = "**required**"
        elif "default" in prop and prop["default"] is not None:
            default = f"`{json.dumps(prop['default'])}`"
        else:
            default = "—"
        desc = prop.get("description", "")
        sources = spec.upstream.get(name)
        if sources:
            desc += " Upstream: " + ", then ".join(f"`{t}.{k}`" for t, k in sources) + "."
        rows.append(f"| `{name}` | {type_of(prop)} | {default} | {desc.strip()} |")
    alternatives = [r for r in spec.required if "|" in r]
    note = "".join(f"\nOne of {', '.join(f'`{n}`' for n in r.split('|'))} is required "
                   "(after upstream sources are applied).\n" for r in alternatives)
    return "\n".join(rows) + "\n" + note


def block(title: str, value: Any) -> str:
    return f"{title}\n\n```json\n{json.dumps(value, indent=2, ensure_ascii=False)}\n```\n"


def section(spec: NodeSpec) -> str:
    ex = json.loads((DOCS / "examples" / f"{spec.name}.json").read_text())
    keys = ", ".join(f"`{k}`" for k in spec.reuse_keys)
    parts = [
        f"### `{spec.name}`\n",
        f"{spec.summary} Family `{spec.family}`; default resources "
        f"`num_cpus: {spec.num_cpus}`, `num_gpus: {spec.num_gpus}` "
        f"(deployment `{spec.deployment_name}` in serve_config.yaml).\n",
        "**Params** (`input_data`)\n",
        params_table(spec),
        "**Output** (`stages[\"" + spec.name + "\"].output`): "
        + ", ".join(f"`{k}`" for k in spec.outputs) + ".\n",
        f"**Reuse rule**: a SUCCESS stage of this node in the same task whose {keys} "
        "is non-empty and still exists on disk is reused (`reuse: auto`); `strict` also "
        "requires the same resolved params; a FAILED stage, an empty or missing artifact, "
        "an expired lease or `reuse: off` runs it again. While it runs, repeats get "
        "`pending` and no second run.\n",
        "**Examples** (real responses recorded by `make docs`; the storage root is shown as "
        "`/share`).\n",
        block("Request:", ex["request"]),
        block(f"Miss — HTTP {ex['miss']['http_status']} (first call: runs):", ex["miss"]["body"]),
        block(f"Pending — HTTP {ex['pending']['http_status']} (repeat while it runs; no "
              "second run):", ex["pending"]["body"]),
        block(f"Hit — HTTP {ex['hit']['http_status']} (repeat after it succeeded; `result` "
              "is the whole task):", ex["hit"]["body"]),
    ]
    return "\n".join(parts)


def render() -> str:
    head = (DOCS / "api_reference_head.md").read_text()
    families: dict[str, list[NodeSpec]] = {}
    for spec in registry.NODES:
        families.setdefault(spec.family, []).append(spec)
    body = ["## Nodes\n"]
    for family, specs in families.items():
        body.append(f"## Family `{family}`\n")
        body.extend(section(spec) for spec in specs)
    return head.rstrip() + "\n\n" + "\n".join(body)


if __name__ == "__main__":
    (DOCS / "SINGLE_TASK_API_REFERENCE.md").write_text(render())
    print(f"wrote {DOCS / 'SINGLE_TASK_API_REFERENCE.md'}")
