"""Render docs/schema.md from the schema declaration: `python -m jobs.schema_doc > docs/schema.md`."""

from __future__ import annotations

import sys

from transforms.schema import COMPOSITES, FILE, LAKE_SCHEMA_VERSION, RAW, TABLES, fields

_INTERNAL = {RAW: "(the record text)", FILE: "(the file read)"}
_TYPES = {"keyword": "string", "ip": "string (IP)", "json": "JSON text (Parquet JSON type)",
          "timestamp": "timestamp, UTC", "boolean": "boolean", "long": "int64", "keyword[]": "list of string"}


def _type(name: str) -> str:
    if name in COMPOSITES:
        members = ", ".join(f"{k} {_TYPES[t].split(',')[0]}" for k, t in COMPOSITES[name].items())
        return f"list of {{{members}}}"
    return _TYPES[name]


def render() -> str:
    out = [
        "# The lake schema",
        "",
        "Generated from `transforms/schema.py` by `make schema-doc`; do not edit by hand "
        "(a test checks this file is current).",
        "",
        f"Lake schema version: {LAKE_SCHEMA_VERSION}. Dotted names are nested structs: `event.action` and "
        "`aws.cloudtrail.user_identity.arn` work verbatim in DuckDB SQL; quote `\"@timestamp\"`. "
        "Every table is partitioned by `event_date` (the UTC date of `@timestamp`).",
    ]
    for table in TABLES:
        out += ["", f"## `{table}`", "", "| field | type | from | rule |", "|---|---|---|---|"]
        for f in fields(table):
            src = ", ".join(_INTERNAL.get(s, f"`{s}`") for s in f.sources) or "—"
            out.append(f"| `{f.name}` | {_type(f.type)} | {src} | {f.rule} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
