"""FHIR resources and Apple Health types read as words: a coded concept's name, a person's
name, a measured value with its unit, and what a reference points at.

A reference resource (an Organization, a Practitioner, a Medication...) has no clinical
date; it is the context of the records that cite it. :class:`References` indexes them by
the forms a reference takes (``urn:uuid:ID``, ``Type/ID``, a full URL ending in
``Type/ID``), so "prescribed by" names the practitioner even when the citing record gives
only the reference.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import gettext, lazy_gettext

from pds.http import locale

REFERENCE_TYPES = frozenset(
    {
        "Organization",
        "Practitioner",
        "PractitionerRole",
        "Medication",
        "Location",
        "Device",
        "Substance",
        "HealthcareService",
        "Endpoint",
        "RelatedPerson",
        "Group",
    }
)
"""Resources that are who or what records cite, not events of the owner's health."""
APPLE_PREFIXES = (
    "HKQuantityTypeIdentifier",
    "HKCategoryTypeIdentifier",
    "HKCorrelationTypeIdentifier",
    "HKDataType",
)
TYPE_NAMES = {
    "Immunization": lazy_gettext("Immunisation"),
    "ActivitySummary": lazy_gettext("Activity summary"),
    "HKQuantityTypeIdentifierBodyMassIndex": lazy_gettext("Body mass index"),
    "HKQuantityTypeIdentifierStepCount": lazy_gettext("Steps"),
}
UNIT_NAMES = {"count/min": "bpm", "{score}": "", "{T-score}": "", "count": ""}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_REF = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9.\-]{1,64})(?:/_history/[^/]+)?$")


def words(camel: str) -> str:
    """``MedicationRequest`` → ``Medication request``."""
    parts = _CAMEL.split(camel)
    return " ".join([parts[0], *(p.lower() if not p.isupper() else p for p in parts[1:])])


def type_name(kind: str) -> str:
    """A record type as words: FHIR ``MedicationRequest``, Apple's
    ``HKQuantityTypeIdentifierHeartRate`` (Heart rate), ``HKWorkoutActivityTypeRunning``."""
    if kind in TYPE_NAMES:
        return str(TYPE_NAMES[kind])
    if kind.startswith("HKWorkoutActivityType"):
        what = words(kind.removeprefix("HKWorkoutActivityType")).lower()
        return gettext("Workout (%(what)s)", what=what)
    for prefix in APPLE_PREFIXES:
        if kind.startswith(prefix):
            return words(kind.removeprefix(prefix)).capitalize()
    return words(kind)


def unit_name(unit: Any) -> str:
    """A unit as a person reads it (``count/min`` is bpm; a UCUM annotation is dropped)."""
    if not isinstance(unit, str):
        return ""
    return UNIT_NAMES.get(unit, unit)


def number(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def amount(value: Any, unit: Any) -> str:
    """A value with its unit, written for the locale: ``173.902 cm``, ``72 bpm``."""
    d = number(value)
    text = locale.number(d) if d is not None else str(value)
    shown = unit_name(unit)
    return f"{text} {shown}" if shown else text


def apple_value(kind: str, value: Any, unit: Any) -> str:
    """An Apple Health value: a number with its unit, or a category value in words
    (``HKCategoryValueSleepAnalysisAsleepCore`` of sleep analysis is "Asleep core")."""
    text = str(value)
    if text.startswith("HKCategoryValue"):
        stem = kind.removeprefix("HKCategoryTypeIdentifier")
        return words(text.removeprefix("HKCategoryValue").removeprefix(stem)).capitalize()
    return amount(value, unit)


def concept(value: Any) -> str | None:
    """A CodeableConcept (or a Coding, or a list of them) as its words."""
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, dict)), None)
    if not isinstance(value, dict):
        return value if isinstance(value, str) and value else None
    if isinstance(value.get("text"), str) and value["text"]:
        return value["text"]
    if isinstance(value.get("display"), str) and value["display"]:
        return value["display"]
    for coding in value.get("coding") or ():
        if isinstance(coding, dict):
            found = coding.get("display") or coding.get("code")
            if isinstance(found, str) and found:
                return found
    code = value.get("code")
    return code if isinstance(code, str) and code else None


def human_name(value: Any) -> str | None:
    """A list of HumanName (the official one first) as ``Dr. Given Family``."""
    names = [n for n in value if isinstance(n, dict)] if isinstance(value, list) else []
    names.sort(key=lambda n: n.get("use") != "official")
    for name in names:
        if isinstance(name.get("text"), str) and name["text"]:
            return name["text"]
        parts = [
            *_strings(name.get("prefix")),
            *_strings(name.get("given")),
            *_strings([name.get("family")]),
            *_strings(name.get("suffix")),
        ]
        if parts:
            return " ".join(parts)
    return None


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str) and v] if isinstance(value, list) else []


def address(value: Any) -> str | None:
    """The first address as ``88 Washington Street, Taunton, MA``."""
    first = value[0] if isinstance(value, list) and value else value
    if not isinstance(first, dict):
        return None
    if isinstance(first.get("text"), str) and first["text"]:
        return first["text"]
    parts = [*_strings(first.get("line")), *_strings([first.get("city"), first.get("state")])]
    return ", ".join(parts) or None


def resource_name(resource: dict[str, Any]) -> str | None:
    """The name of a reference resource (or a Patient): who or what it is."""
    kind = resource.get("resourceType")
    if kind in ("Practitioner", "Patient", "RelatedPerson"):
        return human_name(resource.get("name"))
    if kind == "Medication":
        return concept(resource.get("code"))
    if kind == "Device":
        for entry in resource.get("deviceName") or ():
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                return entry["name"]
        return concept(resource.get("type"))
    if kind == "PractitionerRole":
        return _display(resource.get("practitioner")) or concept(resource.get("code"))
    name = resource.get("name")
    return name if isinstance(name, str) and name else concept(resource.get("code"))


def _display(ref: Any) -> str | None:
    if isinstance(ref, dict) and isinstance(ref.get("display"), str) and ref["display"]:
        return ref["display"]
    return None


def ref_keys(reference: Any) -> list[str]:
    """The index keys a reference string may match: its id, and ``Type/id`` when given."""
    if not isinstance(reference, str) or not reference or reference.startswith("#"):
        return []
    if reference.startswith(("urn:uuid:", "urn:oid:")):
        return [reference.split(":", 2)[2]]
    found = _REF.search(reference)
    if found:
        return [f"{found.group(1)}/{found.group(2)}"]
    return [reference]


class References:
    """The reference resources of the owner's records, found by the references that cite
    them; each with its record id (for a link) and its name."""

    def __init__(self) -> None:
        self.by_key: dict[str, tuple[int, dict[str, Any]]] = {}
        self.items: list[tuple[int, dict[str, Any]]] = []

    def add(self, record_id: int, resource: dict[str, Any]) -> None:
        kind, rid = resource.get("resourceType"), resource.get("id")
        if not isinstance(rid, str):
            return
        if f"{kind}/{rid}" in self.by_key:
            return
        self.items.append((record_id, resource))
        self.by_key[f"{kind}/{rid}"] = (record_id, resource)
        self.by_key.setdefault(rid, (record_id, resource))

    def find(self, ref: Any) -> dict[str, Any] | None:
        """The resource a Reference (or an R5 CodeableReference) points at, if held."""
        if isinstance(ref, dict) and isinstance(ref.get("reference"), dict):
            ref = ref["reference"]
        target = ref.get("reference") if isinstance(ref, dict) else None
        for key in ref_keys(target):
            if key in self.by_key:
                return self.by_key[key][1]
        return None

    def name(self, ref: Any) -> str | None:
        """Who or what a reference names: its display, else the resource it points at."""
        if isinstance(ref, list):
            return ", ".join(n for n in (self.name(r) for r in ref) if n) or None
        shown = _display(ref)
        if shown is None and isinstance(ref, dict) and isinstance(ref.get("reference"), dict):
            shown = _display(ref["reference"])
        if shown:
            return shown
        found = self.find(ref)
        return resource_name(found) if found else None


def medication(resource: dict[str, Any], refs: References) -> str:
    """The medication a request or statement names: its concept, else the Medication its
    reference points at; a Medication with no name is "unnamed medication"."""
    named = concept(resource.get("medicationCodeableConcept"))
    if named:
        return named
    med = resource.get("medication")  # R5 CodeableReference: {concept} or {reference}
    if isinstance(med, dict) and med.get("concept"):
        return concept(med["concept"]) or ""
    ref = resource.get("medicationReference") or med
    shown = refs.name(ref)
    return shown or gettext("unnamed medication")


def value_text(resource: dict[str, Any]) -> str | None:
    """An Observation's (or a component's) value[x] as words."""
    for key, value in resource.items():
        if not key.startswith("value") or value is None:
            continue
        if key == "valueQuantity" and isinstance(value, dict):
            return amount(value.get("value"), value.get("unit") or value.get("code"))
        if key == "valueCodeableConcept":
            return concept(value)
        if key == "valueBoolean":
            return gettext("yes") if value else gettext("no")
        if key in ("valueDateTime", "valueInstant"):
            return locale.moment(value)
        if key == "valuePeriod" and isinstance(value, dict):
            return f"{locale.day(value.get('start'))} – {locale.day(value.get('end'))}"
        if isinstance(value, (str, int, float)):
            return str(value)
    return None


def components(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """An Observation's components (systolic, diastolic) as (name, value)."""
    out = []
    for part in resource.get("component") or ():
        if isinstance(part, dict):
            shown = value_text(part)
            if shown:
                out.append((concept(part.get("code")) or "", shown))
    return out


def join(items: Iterable[str | None]) -> str:
    return ", ".join(i for i in items if i)
