"""The YAML map of Nudge fields to a CRM's properties, with the line of every entry.

    fields:
      lead.company:      {property: company, type: string}
      lead.deal_value:   {object: deal, property: amount, type: number}
      lead.custom.budget: {property: nudge_budget, type: string}
      deal.next_step:    {property: hs_next_step, type: string}
    owners:               # the CRM's owner id → Nudge rep id
      "31337": rep-1

A Nudge field is ``lead.<profile field>``, ``lead.custom.<name>`` or ``deal.<name>``
(the names questionnaires and playbooks write). ``object`` defaults to the prefix:
``lead`` → the CRM's contact, ``deal`` → its deal. ``type`` is the CRM's property type
(``string``, ``number``, ``enumeration``, ``date``, ``datetime``, ``bool``): values are
written in that form, and ``nudge connect check`` compares it with the CRM's own
definition. Every problem names the file and line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from connectors.common import yaml_mapping
from nudge.errors import ConfigError

TYPES = ("string", "number", "enumeration", "date", "datetime", "bool")
OBJECTS = ("contact", "deal")
PROFILE = ("company", "contact_name", "title", "industry", "employees", "deal_value", "stage")


@dataclass(frozen=True)
class Mapping:
    field: str
    object: str
    property: str
    type: str
    line: int


@dataclass(frozen=True)
class FieldMap:
    path: Path
    fields: dict[str, Mapping]
    owners: dict[str, str]

    def for_field(self, name: str) -> Mapping | None:
        """The mapping of a Nudge field, accepting ``company`` for ``lead.company``."""
        return self.fields.get(name) or self.fields.get(f"lead.{name}")

    def reading(self, obj: str) -> list[Mapping]:
        """Mappings of lead profile fields read from ``obj`` (contact or deal)."""
        return [
            m
            for m in self.fields.values()
            if m.object == obj
            and m.field.startswith("lead.")
            and (m.field[5:] in PROFILE or m.field.startswith("lead.custom."))
        ]

    def profile(
        self,
        record: dict[str, Any],
        name: tuple[str, str],
        owner: str,
        typed: Callable[[Any, Mapping], Any] = lambda value, _m: value,
    ) -> dict[str, Any]:
        """A CRM contact record's lead profile fields: the mapped properties (``lead.custom.*``
        under ``custom``), ``contact_name`` from its ``name`` properties (first, last), and
        ``owner_rep_id`` from its ``owner`` property; ``typed`` turns a property's value into
        its Nudge form."""
        fields: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        for m in self.reading("contact"):
            value = record.get(m.property)
            if value in (None, ""):
                continue
            if m.field.startswith("lead.custom."):
                custom[m.field[len("lead.custom.") :]] = typed(value, m)
            else:
                fields[m.field[5:]] = typed(value, m)
        contact_name = " ".join(p for p in (record.get(name[0]), record.get(name[1])) if p)
        if contact_name:
            fields["contact_name"] = contact_name
        crm_owner = record.get(owner)
        if crm_owner and crm_owner in self.owners:
            fields["owner_rep_id"] = self.owners[crm_owner]
        if custom:
            fields["custom"] = custom
        return fields

    @classmethod
    def load(cls, path: Path) -> FieldMap:
        where = str(path)
        root = yaml_mapping(path, "the field map", "fields")
        problems: list[str] = []
        fields: dict[str, Mapping] = {}
        owners: dict[str, str] = {}
        for key, value in root.value:
            line = key.start_mark.line + 1
            if key.value == "fields" and isinstance(value, yaml.MappingNode):
                for name, spec in value.value:
                    mapping = _mapping(where, name, spec, problems)
                    if mapping is not None:
                        fields[mapping.field] = mapping
            elif key.value == "owners" and isinstance(value, yaml.MappingNode):
                for owner, rep in value.value:
                    owners[str(owner.value)] = str(rep.value)
            elif key.value in ("fields", "owners"):
                problems.append(f"{where}:{line}: `{key.value}` must be a mapping")
            else:
                problems.append(f"{where}:{line}: unknown key {key.value!r} (fields, owners)")
        if problems:
            raise ConfigError("\n".join(problems))
        return cls(path, fields, owners)


def _mapping(where: str, name: yaml.Node, spec: yaml.Node, problems: list[str]) -> Mapping | None:
    line = name.start_mark.line + 1
    field = str(name.value)
    prefix = field.split(".", 1)[0]
    if prefix not in ("lead", "deal") or "." not in field:
        problems.append(
            f"{where}:{line}: {field!r}: a Nudge field is lead.<field>, lead.custom.<name> "
            "or deal.<name>"
        )
        return None
    if prefix == "lead" and not field.startswith("lead.custom.") and field[5:] not in PROFILE:
        problems.append(
            f"{where}:{line}: {field!r}: not a lead field (one of {', '.join(PROFILE)}, "
            "or lead.custom.<name>)"
        )
        return None
    if not isinstance(spec, yaml.MappingNode):
        problems.append(f"{where}:{line}: {field}: expected {{property: ..., type: ...}}")
        return None
    values = {str(k.value): (str(v.value), v.start_mark.line + 1) for k, v in spec.value}
    unknown = set(values) - {"property", "type", "object"}
    if unknown:
        problems.append(f"{where}:{line}: {field}: unknown key {sorted(unknown)[0]!r}")
    prop, _ = values.get("property", ("", line))
    kind, kind_line = values.get("type", ("string", line))
    obj, obj_line = values.get("object", ("contact" if prefix == "lead" else "deal", line))
    if not prop:
        problems.append(f"{where}:{line}: {field}: `property` is required")
    if kind not in TYPES:
        problems.append(
            f"{where}:{kind_line}: {field}: type {kind!r} is not one of {', '.join(TYPES)}"
        )
    if obj not in OBJECTS:
        problems.append(
            f"{where}:{obj_line}: {field}: object {obj!r} is not one of {', '.join(OBJECTS)}"
        )
    return Mapping(field, obj, prop, kind, line)


def to_crm(value: Any, kind: str) -> str | None:
    """A Nudge value in the form a CRM property of ``kind`` takes (HubSpot's string forms)."""
    if value is None:
        return None
    if kind == "bool":
        if isinstance(value, str):
            return "true" if value.strip().lower() in ("true", "yes", "1", "y") else "false"
        return "true" if value else "false"
    if kind == "number":
        return str(value)
    if kind == "date" and isinstance(value, dt.datetime | dt.date):
        return value.isoformat()[:10]
    if kind == "datetime" and isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    return str(value)
