"""Checks a JSON value against a schema of Lucca's own OpenAPI document
(contracts/lucca/lucca-api@2024-11-01.json): the subset of JSON Schema it uses for the webhook
paths ($ref, allOf/oneOf/anyOf, type, required, properties, items, enum, const, minLength,
additionalProperties/unevaluatedProperties false). No jsonschema package is installed."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import orjson

DOCUMENT = Path("/work/shared/contracts/lucca/lucca-api@2024-11-01.json")
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


@cache
def document() -> dict[str, Any]:
    # The upstream file has two trailing commas (events-and-employees.md says so).
    text = re.sub(r",(\s*[}\]])", r"\1", DOCUMENT.read_text())
    loaded: dict[str, Any] = orjson.loads(text)
    return loaded


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = document()
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def operation_schema(path: str, method: str, part: str) -> dict[str, Any]:
    """`part` is "request" or a response status ("200", "201")."""
    operation = document()["paths"][path][method]
    if part == "request":
        content = operation["requestBody"]["content"]
    else:
        content = resolve(operation["responses"][part])["content"]
    schema: dict[str, Any] = content["application/json"]["schema"]
    return schema


def problems(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """What in `value` the schema refuses, by path; [] when it conforms."""
    schema = resolve(schema)
    found: list[str] = []
    for part in schema.get("allOf", []):
        found += problems(value, part, where)
    for key in ("oneOf", "anyOf"):
        if key in schema and all(problems(value, option, where) for option in schema[key]):
            found.append(f"{where}: matches none of {key}")
    found += _own(value, schema, where)
    closed = schema.get("unevaluatedProperties") is False
    closed = closed or schema.get("additionalProperties") is False
    if closed and isinstance(value, dict):
        known = _properties(schema)
        found += [f"{where}.{name}: not in the schema" for name in value if name not in known]
    return found


def _own(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    kinds = schema.get("type")
    if kinds is not None:
        allowed = kinds if isinstance(kinds, list) else [kinds]
        ok = any(isinstance(value, _TYPES[kind]) for kind in allowed)
        if isinstance(value, bool) and "boolean" not in allowed:
            ok = False
        if not ok:
            return [f"{where}: {type(value).__name__} is not {allowed}"]
    found: list[str] = []
    if "const" in schema and value != schema["const"]:
        found.append(f"{where}: {value!r} is not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, str) and len(value) < schema.get("minLength", 0):
        found.append(f"{where}: shorter than {schema['minLength']}")
    if isinstance(value, dict):
        found += [
            f"{where}.{name}: required" for name in schema.get("required", []) if name not in value
        ]
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                found += problems(value[name], sub, f"{where}.{name}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found += problems(item, schema["items"], f"{where}[{index}]")
    return found


def _properties(schema: dict[str, Any]) -> set[str]:
    schema = resolve(schema)
    names = set(schema.get("properties", {}))
    for key in ("allOf", "oneOf", "anyOf"):
        for part in schema.get(key, []):
            names |= _properties(part)
    return names
