"""The OpenAPI document's examples, checked (tests/contract/run runs this on the served document).

1. Every operation's JSON request body and JSON 2xx response (`application/json` or `…+json`)
   has an example: on the media type (`example`, `examples`), or on its schema (`example`,
   `examples`), following `$ref`s to the component; for an array, on the array or on its items'
   schema.
2. Every example in the document is valid against its own schema: on media types (requests and
   responses of any status, errors included), on parameters, and on every schema anywhere in it
   (components and their nested properties, inline schemas). JSON Schema 2020-12 (`jsonschema`),
   with `#/components/…` references resolved in the document (`referencing`) and `format`
   checked: `date-time` (RFC 3339), and the OpenAPI integer formats `int32` / `int64`.

Usage: examples.py OPENAPI.json. Prints one line on success; otherwise every missing and every
invalid example, and exits 1.
"""

from __future__ import annotations

import datetime
import json
import re
import sys
from typing import Any, Iterator

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

DOC_URI = "urn:chimatic:openapi"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Keywords whose value is a schema, a list of schemas, or a map of names to schemas.
SCHEMA_ONE = ("items", "additionalProperties", "propertyNames", "contains", "not", "if", "then", "else",
              "unevaluatedItems", "unevaluatedProperties", "contentSchema")
SCHEMA_LIST = ("allOf", "anyOf", "oneOf", "prefixItems")
SCHEMA_MAP = ("properties", "patternProperties", "$defs", "dependentSchemas")

RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def pointer(*parts: str | int) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def is_json(media_type: str) -> bool:
    essence = media_type.split(";", 1)[0].strip().lower()
    return essence == "application/json" or essence.endswith("+json")


def format_checker() -> FormatChecker:
    checker = FormatChecker()

    # jsonschema checks `date-time` only when an optional package is installed: checked here
    # either way, as RFC 3339 says (a full date, a time and an offset).
    @checker.checks("date-time", raises=ValueError)
    def date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if not RFC3339.match(value):
            return False
        datetime.datetime.fromisoformat(value.replace("z", "Z").replace("t", "T").replace("Z", "+00:00"))
        return True

    def integer_range(bits: int):
        def check(value: object) -> bool:
            if isinstance(value, bool) or not isinstance(value, int):
                return True
            return -(2 ** (bits - 1)) <= value < 2 ** (bits - 1)

        return check

    checker.checks("int32")(integer_range(32))
    checker.checks("int64")(integer_range(64))
    return checker


class Document:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        resource = Resource.from_contents(doc, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(DOC_URI, resource)
        self.checker = format_checker()

    def at(self, ptr: str) -> Any:
        node: Any = self.doc
        for part in ptr.split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def deref(self, node: Any) -> tuple[Any, str | None]:
        """Follows a local `$ref`; the target and its pointer (None when `node` is no reference)."""
        ref = node.get("$ref") if isinstance(node, dict) else None
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return node, None
        return self.at(ref[1:]), ref[1:]

    def errors(self, value: Any, schema_ptr: str) -> list[str]:
        """Why `value` is not valid against the schema at `schema_ptr` (empty when it is)."""
        validator = Draft202012Validator(
            {"$ref": f"{DOC_URI}#{schema_ptr}"}, registry=self.registry, format_checker=self.checker
        )
        try:
            found = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        except Unresolvable as e:
            return [f"unresolvable reference: {e}"]
        out = []
        for e in found:
            why = f"at {e.json_path}: {e.message}"
            if e.context:
                # Under `oneOf` / `anyOf` (a nullable `$ref`, say): the error that got deepest.
                closest = max(e.context, key=lambda c: len(c.absolute_path))
                why += f" (at {closest.json_path}: {closest.message})"
            out.append(why)
        return out


def schema_examples(node: Any) -> Iterator[tuple[str, Any]]:
    """A schema's own examples: (pointer below the schema, value)."""
    if not isinstance(node, dict):
        return
    if "example" in node:
        yield pointer("example"), node["example"]
    examples = node.get("examples")
    if isinstance(examples, list):
        for i, value in enumerate(examples):
            yield pointer("examples", i), value


def walk_schema(node: Any, ptr: str) -> Iterator[tuple[str, Any]]:
    """Every schema object in and below `node`: (pointer, schema)."""
    if not isinstance(node, dict):
        return
    yield ptr, node
    for key in SCHEMA_ONE:
        if isinstance(node.get(key), dict):
            yield from walk_schema(node[key], ptr + pointer(key))
    for key in SCHEMA_LIST:
        if isinstance(node.get(key), list):
            for i, sub in enumerate(node[key]):
                yield from walk_schema(sub, ptr + pointer(key, i))
    for key in SCHEMA_MAP:
        if isinstance(node.get(key), dict):
            for name, sub in node[key].items():
                yield from walk_schema(sub, ptr + pointer(key, name))


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], str]]:
    for path, item in doc.get("paths", {}).items():
        for method in METHODS:
            if isinstance(item.get(method), dict):
                yield path, method, item[method], pointer("paths", path, method)


class ExternalExample:
    """An example given as `externalValue`: it cannot be checked from here."""


def media_examples(d: Document, media: dict[str, Any], ptr: str) -> Iterator[tuple[str, Any]]:
    """A media type's own examples: (pointer of the example, value)."""
    if "example" in media:
        yield ptr + pointer("example"), media["example"]
    for name, example in (media.get("examples") or {}).items():
        example, target = d.deref(example)
        where = target or ptr + pointer("examples", name)
        if "value" in example:
            yield where + pointer("value"), example["value"]
        else:
            yield where, ExternalExample()


def own_or_referenced_example(d: Document, schema: Any) -> tuple[bool, Any]:
    """Whether `schema`, or a schema its `$ref`s lead to, has an example; and the last of them."""
    seen: set[str] = set()
    while isinstance(schema, dict):
        if any(True for _ in schema_examples(schema)):
            return True, schema
        schema, target = d.deref(schema)
        if target is None or target in seen:
            break
        seen.add(target)
    return False, schema


def has_example(d: Document, media: dict[str, Any]) -> bool:
    """Whether a body has an example: on the media type, or on its schema (through `$ref`s), or,
    for an array, on its items' schema (through `$ref`s)."""
    if "example" in media or media.get("examples"):
        return True
    found, schema = own_or_referenced_example(d, media.get("schema"))
    if found:
        return True
    types = schema.get("type") if isinstance(schema, dict) else None
    if types == "array" or (isinstance(types, list) and "array" in types):
        return own_or_referenced_example(d, schema.get("items"))[0]
    return False


def bodies(d: Document) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every JSON request body and JSON 2xx response: (label, media type object)."""
    for path, method, op, op_ptr in operations(d.doc):
        name = f"{method.upper()} {path} ({op.get('operationId', '?')})"
        body, _ = d.deref(op.get("requestBody") or {})
        for media_type, media in (body.get("content") or {}).items():
            if is_json(media_type):
                yield f"{name} request {media_type}", media
        for status, response in (op.get("responses") or {}).items():
            if not str(status).startswith("2"):
                continue
            response, _ = d.deref(response)
            for media_type, media in (response.get("content") or {}).items():
                if is_json(media_type):
                    yield f"{name} {status} {media_type}", media


def every_example(d: Document) -> Iterator[tuple[str, str, Any, str]]:
    """Every example in the document: (kind, pointer, value, pointer of the schema it must match),
    kind `body` (a media type's), `parameter` (a parameter's or header's) or `schema`."""
    doc = d.doc
    schema_roots: list[tuple[str, Any]] = []
    for name, schema in (doc.get("components", {}).get("schemas") or {}).items():
        schema_roots.append((pointer("components", "schemas", name), schema))

    def content_of(content: dict[str, Any], ptr: str) -> Iterator[tuple[str, str, Any, str]]:
        for media_type, media in (content or {}).items():
            mptr = ptr + pointer(media_type)
            if "schema" in media:
                schema_roots.append((mptr + pointer("schema"), media["schema"]))
            for where, value in media_examples(d, media, mptr):
                yield "body", where, value, mptr + pointer("schema")

    def parameters_of(params: list[Any], ptr: str) -> Iterator[tuple[str, str, Any, str]]:
        for i, param in enumerate(params or []):
            param, target = d.deref(param)
            pptr = target or ptr + pointer(i)
            if "schema" in param:
                schema_roots.append((pptr + pointer("schema"), param["schema"]))
                for where, value in media_examples(d, param, pptr):
                    yield "parameter", where, value, pptr + pointer("schema")
            if "content" in param:
                yield from content_of(param["content"], pptr + pointer("content"))

    for path, item in doc.get("paths", {}).items():
        yield from parameters_of(item.get("parameters"), pointer("paths", path, "parameters"))
    for _, _, op, op_ptr in operations(doc):
        yield from parameters_of(op.get("parameters"), op_ptr + pointer("parameters"))
        body, target = d.deref(op.get("requestBody") or {})
        yield from content_of(body.get("content"), (target or op_ptr + pointer("requestBody")) + pointer("content"))
        for status, response in (op.get("responses") or {}).items():
            response, target = d.deref(response)
            rptr = target or op_ptr + pointer("responses", status)
            yield from content_of(response.get("content"), rptr + pointer("content"))
            for header, spec in (response.get("headers") or {}).items():
                spec, htarget = d.deref(spec)
                hptr = htarget or rptr + pointer("headers", header)
                if "schema" in spec:
                    schema_roots.append((hptr + pointer("schema"), spec["schema"]))
                    for where, value in media_examples(d, spec, hptr):
                        yield "parameter", where, value, hptr + pointer("schema")

    seen = set()
    for root_ptr, root in schema_roots:
        for ptr, schema in walk_schema(root, root_ptr):
            if ptr in seen:
                continue
            seen.add(ptr)
            for where, value in schema_examples(schema):
                yield "schema", ptr + where, value, ptr


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print("usage: examples.py OPENAPI.json", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        d = Document(json.load(f))

    found = list(bodies(d))
    missing = [label for label, media in found if not has_example(d, media)]

    invalid = []
    counts = {"body": 0, "parameter": 0, "schema": 0}
    for kind, where, value, schema_ptr in every_example(d):
        counts[kind] += 1
        if isinstance(value, ExternalExample):
            invalid.append((where, ["an externalValue example cannot be checked"]))
            continue
        errors = d.errors(value, schema_ptr)
        if errors:
            invalid.append((where, errors))

    failed = False
    if not found:
        print("examples: the document has no JSON request or 2xx response body", file=sys.stderr)
        failed = True
    if missing:
        failed = True
        print(f"examples: {len(missing)} JSON bodies have no example:", file=sys.stderr)
        for label in missing:
            print(f"  {label}", file=sys.stderr)
    if invalid:
        failed = True
        print(f"examples: {len(invalid)} examples are not valid against their schema:", file=sys.stderr)
        for where, errors in invalid:
            print(f"  #{where}", file=sys.stderr)
            for e in errors:
                print(f"    {e}", file=sys.stderr)
    if failed:
        return 1
    print(
        f"examples: {len(found)} JSON bodies, each with an example; {counts['schema']} examples on schemas, "
        f"{counts['body']} on bodies, {counts['parameter']} on parameters: all valid"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
