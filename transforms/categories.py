"""The lookup tables behind event.category / event.type, as data (ECS expectations as of ECS 8.x).

`event_names.csv` (per eventSource + eventName) and `event_sources.csv` (per
eventSource default) ship beside this module; the verb table and ECS's expected
category → type pairs are below. Read once, then used as plain mappings.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources

#: ECS 8.x: the event.type values expected with each event.category.
ECS_EXPECTED_TYPES: dict[str, frozenset[str]] = {
    "api": frozenset({"access", "admin", "allowed", "change", "creation", "deletion", "denied", "end", "info",
                      "start", "user"}),
    "authentication": frozenset({"start", "end", "info"}),
    "configuration": frozenset({"access", "change", "creation", "deletion", "info"}),
    "database": frozenset({"access", "change", "info", "error"}),
    "driver": frozenset({"change", "end", "info", "start"}),
    "email": frozenset({"info"}),
    "file": frozenset({"access", "change", "creation", "deletion", "info"}),
    "host": frozenset({"access", "change", "end", "info", "start"}),
    "iam": frozenset({"admin", "change", "creation", "deletion", "group", "info", "user"}),
    "intrusion_detection": frozenset({"allowed", "denied", "info"}),
    "library": frozenset({"start"}),
    "malware": frozenset({"info"}),
    "network": frozenset({"access", "allowed", "connection", "denied", "end", "info", "protocol", "start"}),
    "package": frozenset({"access", "change", "deletion", "info", "installation", "start"}),
    "process": frozenset({"access", "change", "end", "info", "start"}),
    "registry": frozenset({"access", "change", "creation", "deletion"}),
    "session": frozenset({"start", "end", "info"}),
    "threat": frozenset({"indicator"}),
    "vulnerability": frozenset({"info"}),
    "web": frozenset({"access", "error", "info"}),
}
#: ECS 8.x allowed event.type values.
ECS_TYPES = frozenset({"access", "admin", "allowed", "change", "connection", "creation", "deletion", "denied",
                       "device", "end", "error", "group", "indicator", "info", "installation", "protocol", "start",
                       "user"})

#: The API verb (leading word of eventName) → event.type, when no table names the event.
VERB_TYPES: dict[str, str] = {
    "Create": "creation", "Allocate": "creation", "Run": "creation", "Import": "creation", "Copy": "creation",
    "Delete": "deletion", "Terminate": "deletion", "Remove": "deletion", "Release": "deletion",
    "Describe": "info", "Get": "info", "List": "info", "Head": "info", "Lookup": "info", "Search": "info",
    "Put": "change", "Update": "change", "Modify": "change", "Attach": "change", "Detach": "change",
    "Set": "change", "Add": "change", "Associate": "change", "Disassociate": "change", "Enable": "change",
    "Disable": "change", "Tag": "change", "Untag": "change", "Authorize": "change", "Revoke": "change",
    "Reset": "change", "Change": "change", "Upload": "change", "Replace": "change", "Restore": "change",
    "Rotate": "change", "Register": "change", "Deregister": "change", "Start": "start", "Stop": "end",
}
DEFAULT_CATEGORY = "api"


@dataclass(frozen=True)
class Tables:
    by_name: dict[str, tuple[str, str]]  # "source name" → (categories, types), "|"-joined
    by_source_and_type: dict[str, str]  # "source type" → categories valid for that type, "|"-joined


def _rows(name: str) -> list[dict[str, str]]:
    with resources.files("transforms").joinpath(name).open(newline="") as fh:
        return list(csv.DictReader(fh))


def category_for(defaults: list[str], type_: str) -> str:
    """The source's default categories that ECS expects with this type, else configuration, else api."""
    valid = [c for c in defaults if type_ in ECS_EXPECTED_TYPES.get(c, ())]
    if valid:
        return "|".join(valid)
    return "configuration" if type_ in ECS_EXPECTED_TYPES["configuration"] else DEFAULT_CATEGORY


@functools.cache
def tables() -> Tables:
    by_name = {f"{r['event_source']} {r['event_name']}": (r["category"], r["type"]) for r in _rows("event_names.csv")}
    types = set(VERB_TYPES.values()) | {"info"}
    by_source = {f"{r['event_source']} {t}": category_for(r["category"].split("|"), t)
                 for r in _rows("event_sources.csv") for t in types}
    return Tables(by_name, by_source)
