"""The sandbox org's metadata: describe snapshots, permission sets, per-user views of both.

Describes are parsed once at start-up and indexed (case-insensitive names, key prefixes, child
relationships). A describe as a user sees it (flags from their permission sets, urls in the
request's API version) is cached per (object, permissions, version, generation), so serving
``/describe`` does not rebuild it; admin changes bump the generation and ``Last-Modified``.
"""

from __future__ import annotations

import copy
import json
import threading
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sandbox_org.describe_builder import AUTO_NUMBER_FORMATS, SNAPSHOT_VERSION

OPERATIONS = ("read", "create", "edit", "delete", "viewAll", "modifyAll")
# Every user can read users (as in any org); files follow ContentVersion's grants.
_ALWAYS_READABLE = {"User"}
_FILE_OBJECTS = {"ContentDocument", "ContentDocumentLink"}


@dataclass(frozen=True)
class Perms:
    """The union of a user's permission sets: object name -> granted operations."""

    grants: frozenset[tuple[str, str]]

    def can(self, sobject: str, op: str) -> bool:
        if op == "read" and sobject in _ALWAYS_READABLE:
            return True
        if sobject == "ContentVersion" and op == "read" and self.can(sobject, "create"):
            return True  # a user sees the files it uploads (it owns them)
        if sobject in _FILE_OBJECTS:
            if op == "read":
                return self.can("ContentVersion", "read")
            if op == "create" and sobject == "ContentDocumentLink":
                return self.can("ContentVersion", "create")
            return self.can("ContentVersion", op)
        if (sobject, "modifyAll") in self.grants:
            return True
        if op == "read" and (sobject, "viewAll") in self.grants:
            return True
        return (sobject, op) in self.grants


@dataclass
class ObjectSchema:
    name: str
    describe: dict[str, Any]
    last_modified: datetime
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower name -> field
    children: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower rel -> child rel
    parents: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower rel -> ref field
    auto_number: str | None = None
    validation_rules: list[dict[str, Any]] = field(default_factory=list)

    def reindex(self) -> None:
        self.fields = {f["name"].lower(): f for f in self.describe["fields"]}
        self.children = {
            c["relationshipName"].lower(): c
            for c in self.describe["childRelationships"]
            if c["relationshipName"]
        }
        self.parents = {
            f["relationshipName"].lower(): f
            for f in self.describe["fields"]
            if f["type"] == "reference" and f["relationshipName"]
        }

    @property
    def key_prefix(self) -> str:
        return self.describe["keyPrefix"]

    @property
    def label(self) -> str:
        return self.describe["label"]

    def field(self, name: str) -> dict[str, Any] | None:
        return self.fields.get(name.lower())


def load_permission_sets(directory: Path) -> dict[str, dict[str, Any]]:
    """Permission sets by api_name: {"api_name", "label", "objects": {object: [ops]}}."""
    sets = {}
    for path in sorted(directory.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        sets[data["api_name"]] = {
            "api_name": data["api_name"],
            "label": data["label"],
            "objects": {k: list(v) for k, v in data.get("objects", {}).items()},
        }
    return sets


class Schema:
    """All objects of the org, permission sets, and cached per-user describe views."""

    def __init__(self, schemas_dir: Path) -> None:
        self._lock = threading.RLock()
        self.objects: dict[str, ObjectSchema] = {}
        self._lower: dict[str, str] = {}
        self.by_prefix: dict[str, str] = {}
        start = datetime.now(UTC).replace(microsecond=0)
        for path in sorted((schemas_dir / "objects").glob("*.json")):
            describe = json.loads(path.read_text(encoding="utf-8"))
            obj = ObjectSchema(
                name=describe["name"],
                describe=describe,
                last_modified=start,
                auto_number=AUTO_NUMBER_FORMATS.get(describe["name"]),
            )
            obj.reindex()
            self.objects[obj.name] = obj
            self._lower[obj.name.lower()] = obj.name
            self.by_prefix[obj.key_prefix] = obj.name
        self.permission_sets = load_permission_sets(schemas_dir / "permission_sets")
        self.generation = 0
        self.global_last_modified = start
        self._view_cache: dict[tuple, tuple[dict[str, Any], bytes | None]] = {}

    # -- lookup ---------------------------------------------------------------------------

    def get(self, name: str) -> ObjectSchema | None:
        real = self._lower.get(name.lower())
        return self.objects.get(real) if real else None

    def perms_for(self, permission_sets: list[str]) -> Perms:
        grants = set()
        for ps in permission_sets:
            spec = self.permission_sets.get(ps)
            if spec is None:
                raise ValueError(f"unknown permission set {ps!r}")
            for obj, ops in spec["objects"].items():
                for op in ops:
                    grants.add((obj, op))
        return Perms(frozenset(grants))

    # -- per-user views -------------------------------------------------------------------

    def describe_for(self, sobject: str, perms: Perms, version: str) -> dict[str, Any] | None:
        """The describe as this user sees it, or None when unknown or not readable."""
        obj = self.get(sobject)
        if obj is None or not perms.can(obj.name, "read"):
            return None
        key = ("d", obj.name, perms, version, self.generation)
        hit = self._view_cache.get(key)
        if hit is not None:
            return hit[0]
        with self._lock:
            view = self._user_view(obj, perms, version)
            view["childRelationships"] = [
                c for c in view["childRelationships"] if perms.can(c["childSObject"], "read")
            ]
            self._view_cache[key] = (view, None)
        return view

    def describe_json(self, sobject: str, perms: Perms, version: str, render: Any) -> bytes | None:
        """``render(describe_for(...))``, cached with the view (describes are large)."""
        view = self.describe_for(sobject, perms, version)
        if view is None:
            return None
        obj = self.get(sobject)
        key = ("d", obj.name, perms, version, self.generation)  # type: ignore[union-attr]
        hit = self._view_cache.get(key)
        if hit is not None and hit[1] is not None:
            return hit[1]
        data = render(view)
        self._view_cache[key] = (view, data)
        return data

    def global_entry(self, obj: ObjectSchema, perms: Perms, version: str) -> dict[str, Any]:
        view = self._user_view(obj, perms, version, fields=False)
        keys = [
            "activateable",
            "associateEntityType",
            "associateParentEntity",
            "createable",
            "custom",
            "customSetting",
            "deepCloneable",
            "deletable",
            "deprecatedAndHidden",
            "feedEnabled",
            "hasSubtypes",
            "isInterface",
            "isSubtype",
            "keyPrefix",
            "label",
            "labelPlural",
            "layoutable",
            "mergeable",
            "mruEnabled",
            "name",
            "queryable",
            "replicateable",
            "retrieveable",
            "searchable",
            "triggerable",
            "undeletable",
            "updateable",
            "urls",
        ]
        entry = {k: view.get(k) for k in keys}
        entry["urls"] = {
            k: v
            for k, v in view["urls"].items()
            if k
            in (
                "compactLayouts",
                "rowTemplate",
                "approvalLayouts",
                "listviews",
                "describe",
                "quickActions",
                "layouts",
                "sobject",
            )
        }
        return entry

    def _user_view(
        self, obj: ObjectSchema, perms: Perms, version: str, *, fields: bool = True
    ) -> dict[str, Any]:
        base = obj.describe
        if fields:
            view = copy.deepcopy(base)
        else:
            view = {k: v for k, v in base.items() if k not in ("fields", "childRelationships")}
            view["urls"] = dict(base["urls"])
        can = perms.can
        view["createable"] = base["createable"] and can(obj.name, "create")
        view["updateable"] = base["updateable"] and can(obj.name, "edit")
        view["deletable"] = base["deletable"] and can(obj.name, "delete")
        view["undeletable"] = base["undeletable"] and can(obj.name, "delete")
        view["mergeable"] = base["mergeable"] and can(obj.name, "delete") and can(obj.name, "edit")
        view["queryable"] = base["queryable"] and can(obj.name, "read")
        view["retrieveable"] = base["retrieveable"] and can(obj.name, "read")
        view.setdefault("associateEntityType", None)
        view.setdefault("associateParentEntity", None)
        vtag = "v" + version
        view["urls"] = {k: v.replace(SNAPSHOT_VERSION, vtag) for k, v in view["urls"].items()}
        if fields:
            for rti in view.get("recordTypeInfos", []):
                rti["urls"] = {k: v.replace(SNAPSHOT_VERSION, vtag) for k, v in rti["urls"].items()}
        return view

    def readable_objects(self, perms: Perms) -> list[ObjectSchema]:
        return [o for o in self.objects.values() if perms.can(o.name, "read")]

    # -- runtime changes (admin endpoint) -------------------------------------------------

    def touch(self, obj: ObjectSchema) -> None:
        """Record a metadata change: new Last-Modified, drop cached views."""
        now = datetime.now(UTC).replace(microsecond=0)
        # Last-Modified has second precision; make each change visible to If-Modified-Since.
        if now <= obj.last_modified:
            now = obj.last_modified + timedelta(seconds=1)
        obj.last_modified = now
        self.global_last_modified = max(self.global_last_modified, now)
        self.generation += 1
        self._view_cache.clear()

    def modify_field(self, sobject: str, field_name: str, change: dict[str, Any]) -> dict:
        """Apply an admin change to one field (see the admin blueprint for the keys)."""
        with self._lock:
            obj = self.get(sobject)
            if obj is None:
                raise KeyError(sobject)
            f = obj.field(field_name)
            if f is None:
                raise KeyError(field_name)
            for value in change.get("add_picklist_values", []):
                if not any(p["value"] == value for p in f["picklistValues"]):
                    f["picklistValues"].append(
                        {
                            "active": True,
                            "defaultValue": False,
                            "label": value,
                            "validFor": None,
                            "value": value,
                        }
                    )
                else:
                    for p in f["picklistValues"]:
                        if p["value"] == value:
                            p["active"] = True
            for value in change.get("deactivate_picklist_values", []):
                for p in f["picklistValues"]:
                    if p["value"] == value:
                        p["active"] = False
            if "length" in change:
                f["length"] = int(change["length"])
                f["byteLength"] = 3 * f["length"]
            for key in ("unique", "externalId", "nillable", "restrictedPicklist", "label"):
                if key in change:
                    f[key] = change[key]
            if change.get("externalId"):
                f["idLookup"] = True
            self.touch(obj)
            obj.reindex()
            return f

    def add_validation_rule(self, sobject: str, rule: dict[str, Any]) -> None:
        with self._lock:
            obj = self.get(sobject)
            if obj is None:
                raise KeyError(sobject)
            obj.validation_rules.append(rule)

    def clear_validation_rules(self) -> None:
        with self._lock:
            for obj in self.objects.values():
                obj.validation_rules.clear()
