"""Conformance with the peers' fixtures (../shared/peers): equal everywhere but the documented deviations.

Each expected field of a peer is looked up under our name and compared by value.
A difference must be listed in DEVIATIONS (with the reason, also in
docs/deviations.md); a peer field we do not produce must match NOT_PRODUCED.
Both lists are checked for staleness: an entry that no longer explains anything fails.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
from pathlib import Path

from jobs import read
from tests.conftest import ROOT, normalized_frame, shared_path

# peer field → our field, where the names differ (prefix renames apply to everything under them)
RENAMES = {
    "aws.cloudtrail.user_identity.accessKeyId": "aws.cloudtrail.user_identity.access_key_id",
    "aws.cloudtrail.user_identity.accountId": "aws.cloudtrail.user_identity.account_id",
    "aws.cloudtrail.user_identity.principalId": "aws.cloudtrail.user_identity.principal_id",
    "aws.cloudtrail.user_identity.sessionContext.sessionIssuer.arn":
        "aws.cloudtrail.user_identity.session_context.session_issuer.arn",
    "aws.cloudtrail.user_identity.sessionContext.sessionIssuer.userName":
        "aws.cloudtrail.user_identity.session_context.session_issuer.user_name",
    "aws.cloudtrail.console_login.additional_eventdata.": "aws.cloudtrail.console_login.",
    "aws.cloudtrail.flattened.digest.": "aws.cloudtrail.digest.",
    # the `flattened` names are the payload columns themselves (the events view aliases them)
    "aws.cloudtrail.flattened.": "aws.cloudtrail.",
}

# peer fields with no counterpart in our schema, and why (also in docs/deviations.md)
NOT_PRODUCED = {
    "message": "Sekoia's copy of the raw input; ours is event.original",
    "action.*": "Sekoia's own action namespace, not ECS",
    "aws.cloudtrail.cluster_name": "Sekoia cherry-pick of responseElements.cluster.clusterName; it is in the payload",
    "aws.cloudtrail.response_elements.*": "Sekoia cherry-picks from responseElements; all of it is in the payload",
    "ecs.version": "Elastic ingest metadata",
    "tags": "Elastic ingest metadata",
    "event.created": "Elastic ingest time",
    "source.geo.*": "needs a GeoIP database; trailhouse runs offline and ships none",
    "source.as.*": "needs a GeoIP ASN database; trailhouse runs offline and ships none",
    "*entity.id": "Elastic's entity/actor-target mode",
    "related.entity": "Elastic's entity/actor-target mode",
    "service.name": "Elastic's AWS-service actor variant",
    "related.hash": "the digest's previous hash is aws.cloudtrail.digest.previous_hash_value",
    "event.kind@digest": "digests are a table of their own, not events",
    "event.outcome@digest": "digests are a table of their own, not events",
    "event.type@digest": "digests are a table of their own, not events",
}

# (peer, field) → why our value knowingly differs; peer "*" means every fixture of that peer
DEVIATIONS = {
    ("sekoia", "event.outcome"): "Sekoia says success for calls that failed; ours is failure on errorCode/"
                                 "errorMessage and the ConsoleLogin result",
    ("sekoia", "event.category"): "Sekoia labels every call network; ours comes from the event-name table",
    ("sekoia", "event.type"): "Sekoia labels every call access; ours comes from the table and the API verb",
    ("sekoia", "user.id"): "Sekoia puts the account id in user.id; ours is the caller's ARN",
    ("sekoia", "user.name"): "Sekoia puts the created user's id in user.name; ours is the caller",
    ("sekoia", "cloud.service.name"): 'Sekoia always says "cloudtrail"; ours is the service called',
    ("sekoia", "tls.version"): 'Sekoia keeps "TLSv1.2"; ours is the number, with tls.version_protocol',
    ("sekoia", "user_agent.os.name"): 'Sekoia writes "Other" for an unknown OS; ours leaves it empty, as Elastic',
    ("sekoia", "user_agent.version"): "Sekoia drops the fourth version part (105.0.0); ours keeps all (105.0.0.0)",
    ("sekoia", "related.user"): "ours also lists the caller and its principal id, not only the created user",
    ("sekoia", "related.hosts"): "ours also lists the EC2 instance ids named in the request or response",
    ("elastic", "event.type"): "Elastic defaults to info; ours comes from the table and the API verb, and "
                               "ConsoleLogin is start plus allowed/denied",
    ("elastic", "user.id"): "Elastic's newest variant uses the role ARN for assumed roles; ours is "
                            "userIdentity.arn (the session's ARN)",
    ("elastic", "related.user"): "Elastic also lists ARNs (user.id) and issuers; ours lists names, session "
                                 "names and principal ids",
    ("elastic", "aws.cloudtrail.request_parameters"): "Elastic stores Java Map.toString() text; ours is JSON",
    ("elastic", "aws.cloudtrail.response_elements"): "Elastic stores Java Map.toString() text; ours is JSON",
    ("elastic", "aws.cloudtrail.additional_eventdata"): "Elastic stores Java Map.toString() text; ours is JSON",
    ("elastic", "aws.cloudtrail.digest.log_files"): "Elastic keeps CloudTrail's camelCase keys; ours are "
                                                    "snake_case with parsed times",
}


def _flat(doc: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in doc.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def _ours(path: str) -> str:
    if path in RENAMES:
        return RENAMES[path]
    for old, new in RENAMES.items():
        if old.endswith(".") and path.startswith(old):
            return new + path[len(old):]
    return path


def _not_produced(path: str, kind: str) -> bool:
    return any(fnmatch.fnmatch(path, p) or p == f"{path}@{kind}" for p in NOT_PRODUCED)


def _lookup(row: dict, path: str) -> tuple[bool, object]:
    """Our value at a dotted path; inside a JSON payload column the path continues into the JSON."""
    node: object = row
    parts = path.split(".")
    for i, part in enumerate(parts):
        if isinstance(node, str):
            try:
                node = json.loads(node)
            except ValueError:
                return False, None
        if not isinstance(node, dict) or part not in node:
            rest = ".".join(parts[i:])
            if isinstance(node, dict) and rest in node:  # JSON keys with dots ("request.params")
                return True, node[rest]
            return False, None
        node = node[part]
    return True, node


def _norm(value: object) -> object:
    """Compare meaning, not representation: JSON text, times, boolean strings, list order."""
    if isinstance(value, str):
        if value in ("true", "false"):
            return value == "true"
        if value[:1] in "{[":
            try:
                return _norm(json.loads(value))
            except ValueError:
                return value
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.timezone.utc)
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc)
    if isinstance(value, list):
        items = [_norm(v) for v in value]
        try:
            return sorted(items, key=json.dumps)
        except TypeError:
            return items
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    return value


def normalized(records: list[bytes]) -> list[dict]:
    out = []
    for rec in records:
        parsed = read.split(rec)
        rows = normalized_frame(["peer"], [parsed], parsed.table).to_dicts()
        out.append({"_table": parsed.table, **rows[0]})
    return out


def compare(peer: str, case: str, expected: dict, ours: dict) -> tuple[list[str], set[tuple[str, str]]]:
    """Undocumented differences, and the documented entries that were used."""
    kind = "digest" if ours["_table"] == "digests" else "event"
    problems, used = [], set()
    for path, want in _flat(expected).items():
        if _not_produced(path, kind):
            used.add(("not_produced", path))
            continue
        found, got = _lookup(ours, _ours(path))
        if found and _norm(got) == _norm(want):
            continue
        key = (peer, _ours(path))
        if key in DEVIATIONS:
            used.add(key)
            continue
        problems.append(f"{peer}/{case}: {path} expected {want!r}, ours {'missing' if not found else repr(got)}")
    return problems, used


def sekoia_cases() -> list[tuple[str, bytes, dict]]:
    folder = shared_path("peers", "sekoia")
    return [(p.name, json.loads(p.read_text())["input"]["message"].encode(), json.loads(p.read_text())["expected"])
            for p in sorted(folder.glob("*.json"))]


def elastic_cases() -> list[tuple[str, bytes, dict]]:
    folder = shared_path("peers", "elastic")
    cases = []
    for exp in sorted(folder.glob("*-expected.json")):
        lines = exp.with_name(exp.name.removesuffix("-expected.json")).read_bytes().splitlines()
        docs = json.loads(exp.read_text())["expected"]
        assert len(lines) == len(docs)
        # a blank input line gives Elastic's harness an empty document: nothing to compare
        cases += [(f"{exp.name}#{n}", line, doc) for n, (line, doc) in enumerate(zip(lines, docs)) if line.strip()]
    return cases


def test_sekoia_and_elastic_expected_outputs_match_but_for_documented_deviations():
    problems, used = [], set()
    for peer, cases in (("sekoia", sekoia_cases()), ("elastic", elastic_cases())):
        ours = normalized([raw for _, raw, _ in cases])
        for (case, _, expected), row in zip(cases, ours):
            p, u = compare(peer, case, expected, row)
            problems += p
            used |= u
    assert not problems, "\n".join(problems)
    stale = set(DEVIATIONS) - used
    assert not stale, f"documented deviations that no fixture shows any more: {stale}"
    stale_np = {p for p in NOT_PRODUCED if ("not_produced", p) not in used and not any(
        u[0] == "not_produced" and (fnmatch.fnmatch(u[1], p) or p.startswith(u[1] + "@")) for u in used)}
    assert not stale_np, f"not-produced entries that match no peer field: {stale_np}"


def test_deviations_are_documented():
    doc = (ROOT / "docs" / "deviations.md").read_text()
    for (_, field) in DEVIATIONS:
        assert f"`{field}`" in doc, field
    for pattern in NOT_PRODUCED:
        assert f"`{pattern.split('@')[0]}`" in doc, pattern


# Elastic fixtures that break the ingest contract on purpose: a record without eventTime is quarantined.
ELASTIC_QUARANTINED = {"test-update-lambda-json-0.json": "missing eventTime"}


def test_every_elastic_input_ingests_without_quarantine(tmp_path):
    from tests.conftest import ingest, last_run, quarantine

    folder = shared_path("peers", "elastic")
    src = tmp_path / "src"
    src.mkdir()
    n = 0
    for log in sorted(folder.glob("*.log")):
        for i, line in enumerate(ln for ln in log.read_bytes().splitlines() if ln.strip()):
            (src / f"{log.stem}-{i}.json").write_bytes(line)  # one record per file, as each is an object
            n += 1
    assert ingest(src, "--lake", tmp_path / "lake") == 3
    run = last_run(tmp_path / "lake")
    assert {Path(q["source"]).name: q["reason"] for q in quarantine(tmp_path / "lake")} == ELASTIC_QUARANTINED
    assert run["files_quarantined"] == run["digests_quarantined"] == 0
    assert run["events_read"] + run["digests_read"] == n
    assert run["events_read"] == run["events_written"] + run["duplicates"] + run["events_quarantined"]
    assert run["digests_read"] == run["digests_written"] + run["digest_duplicates"] == 2
    assert run["events_quarantined"] == len(ELASTIC_QUARANTINED)


def test_every_sekoia_input_ingests_without_quarantine(tmp_path):
    from tests.conftest import ingest, last_run

    src = tmp_path / "src"
    src.mkdir()
    cases = sekoia_cases()
    for name, raw, _ in cases:
        (src / name).write_bytes(raw)
    assert ingest(src, "--lake", tmp_path / "lake") == 0
    assert last_run(tmp_path / "lake")["events_read"] == len(cases)
