"""JSON Patch (RFC 6902) on the simulator's records, with Brightpearl's error codes."""

from __future__ import annotations

from typing import Any

from sandbox.brightpearl.errors import bad


def deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [deep_copy(v) for v in value]
    if isinstance(value, set):
        return set(value)
    return value


def _pointer(doc: dict[str, Any], path: str, create: bool) -> tuple[dict[str, Any], str]:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.strip("/").split("/")]
    node = doc
    for part in parts[:-1]:
        if part not in node or not isinstance(node[part], dict):
            if not create:
                raise bad(f"path {path} does not exist", "CMNC-012")
            node[part] = {}
        node = node[part]
    return node, parts[-1]


def apply_patch(doc: dict[str, Any], op: dict[str, Any], index: int) -> None:
    kind = op["op"]
    if kind in ("add", "replace"):
        if "value" not in op:
            raise bad(f"patch operation {index} ({kind}) needs a value", "CMNC-011")
        node, key = _pointer(doc, op["path"], create=True)
        if kind == "replace" and key not in node:
            raise bad(f"patch operation {index}: {op['path']} does not exist, use add", "CMNC-012")
        node[key] = op["value"]
    elif kind == "remove":
        node, key = _pointer(doc, op["path"], create=False)
        if key not in node:
            raise bad(f"patch operation {index}: {op['path']} does not exist", "CMNC-012")
        del node[key]
    elif kind == "test":
        node, key = _pointer(doc, op["path"], create=False)
        if node.get(key) != op.get("value"):
            raise bad(f"patch test failed: {op['path']} is not {op.get('value')!r}", "CMNC-013")
    elif kind in ("move", "copy"):
        src, skey = _pointer(doc, op.get("from", ""), create=False)
        if skey not in src:
            raise bad(f"patch operation {index}: {op.get('from')} does not exist", "CMNC-012")
        value = src[skey] if kind == "copy" else src.pop(skey)
        node, key = _pointer(doc, op["path"], create=True)
        node[key] = deep_copy(value)
    else:
        raise bad(f"patch operation {index}: unknown op {kind!r}", "CMNC-011")


def patch_operations(ops: Any) -> list[Any]:
    """The body of a PATCH: a non-empty JSON Patch array."""
    if not isinstance(ops, list) or not ops:
        raise bad("PATCH body must be a non-empty JSON Patch array", "CMNC-010")
    return ops
