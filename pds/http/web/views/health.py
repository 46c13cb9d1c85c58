"""The health page: FHIR resources and Apple Health records by what they are.

A summary of the patient (name, birth date, gender), then conditions, medications,
immunisations, procedures, encounters and the latest value of each observation, each in
words and dates; a line chart for each measure taken several times (weight, heart rate,
steps, blood pressure with its systolic and diastolic values) with its numbers; the
people and places the records cite; and every record, a page at a time.

Reference resources (Organization, Practitioner, Medication, Device...) have no clinical
date: they are not listed as records but named where a record cites them ("prescribed by
Dr X", "at Morton Hospital") and in "People and places in your records". A record with no
date reads "undated" (the ``day`` filter), never the importer's sort key for it.

The summary reads at most ``LIMIT`` records, newest first (it says so when there are
more): a multi-million-record Apple Health export keeps the page quick, and narrowing the
dates reaches the earlier ones. :func:`describe` gives one record's fields as labelled
lines, for the record page.

Longer than 500 lines because :func:`describe` says one record the way the page's
sections say it, through the same reading of each resource type (apart, the two would
drift).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from flask import render_template
from flask_babel import gettext, lazy_gettext

from pds.http import locale
from pds.http.web import charts
from pds.http.web.views import common
from pds.http.web.views.fhirtext import (
    REFERENCE_TYPES,
    References,
    address,
    amount,
    apple_value,
    components,
    concept,
    human_name,
    join,
    medication,
    number,
    resource_name,
    type_name,
    value_text,
    words,
)

if TYPE_CHECKING:
    from pds.vault import Vault
    from pds.vault.records import StoredRecord

FILTERS = ("type",)
LIMIT = 20_000  # records the summary reads, newest first
SHOWN = 10  # records a section shows (the type filter shows them all)
MAX_CHARTS = 40
MAX_POINTS = 60  # more points than this are summed or averaged per day, then per month
UNDATED_END = "0001-01-02"  # the importer dates an undated FHIR resource 0001-01-01
MEDICATIONS = (
    "MedicationRequest",
    "MedicationStatement",
    "MedicationAdministration",
    "MedicationDispense",
)
SECTIONS = {
    "Condition": lazy_gettext("Conditions"),
    "Medication": lazy_gettext("Medications"),
    "Immunization": lazy_gettext("Immunisations"),
    "Procedure": lazy_gettext("Procedures"),
    "Encounter": lazy_gettext("Visits"),
}
GENDERS = {
    "male": lazy_gettext("male"),
    "female": lazy_gettext("female"),
    "other": lazy_gettext("other"),
    "unknown": lazy_gettext("unknown"),
}
# Apple Health types whose values add up over a day (the others are averaged).
SUMMED = (
    "StepCount",
    "Distance",
    "EnergyBurned",
    "FlightsClimbed",
    "AppleExerciseTime",
    "AppleStandTime",
    "Dietary",
)


@dataclass
class Measure:
    """The numeric values of one measure in one unit, per series (a component)."""

    name: str
    unit: str
    summed: bool
    points: dict[str, list[tuple[str, Decimal]]] = field(default_factory=dict)


@dataclass
class Summary:
    """What the page says about the records the filters select."""

    patients: list[dict[str, Any]] = field(default_factory=list)
    sections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)
    kinds: dict[str, str] = field(default_factory=dict)  # a section's type, for its link
    observations: dict[str, dict[str, Any]] = field(default_factory=dict)
    measures: dict[tuple[str, str], Measure] = field(default_factory=dict)
    types: Counter = field(default_factory=Counter)
    cut: bool = False


def render(vault: Vault, category: str, f: common.Filters) -> str:
    chosen = f.extra.get("type")
    refs = references(vault, f.source)
    summary = summarise(vault, category, f, refs, chosen)
    listed = (rec for rec in common.selected(vault, category, f) if _listed(rec, chosen))
    found, more = common.page(listed, f)
    return render_template(
        "views/health.html",
        category=category,
        f=f,
        chosen=chosen,
        sources=common.sources(vault, category, f.source),
        types=sorted(((t, type_name(t), n) for t, n in summary.types.items()), key=_by_name),
        summary=summary,
        sections=[(key, str(title)) for key, title in SECTIONS.items()],
        charts=measure_charts(summary.measures),
        places=[place(rid, res) for rid, res in refs.items],
        rows=[row(rec, refs) for rec in found],
        limit=LIMIT,
        more=more,
    )


def _by_name(item: tuple[str, str, int]) -> str:
    return item[1].lower()


def _kind(payload: dict[str, Any]) -> str:
    kind = payload.get("type")
    return kind if isinstance(kind, str) else ""


def _resource(payload: dict[str, Any]) -> dict[str, Any]:
    resource = payload.get("resource")
    return resource if isinstance(resource, dict) else {}


def _listed(rec: StoredRecord, chosen: str | None) -> bool:
    """Whether the record list shows a record: a dated event, of the chosen type if any."""
    kind = _kind(rec.payload)
    if kind in REFERENCE_TYPES or kind == "Patient":
        return False
    return chosen is None or kind == chosen


def references(vault: Vault, source: int | None) -> References:
    """The undated reference resources (the importer dates them first, on 0001-01-01)."""
    refs = References()
    for rec in vault.records("health", until=UNDATED_END, source=source):
        if _kind(rec.payload) in REFERENCE_TYPES and _resource(rec.payload):
            refs.add(rec.id, _resource(rec.payload))
    return refs


def _selects(rec: StoredRecord, f: common.Filters, needle: str) -> bool:
    if f.since and rec.occurred_at < f.since:
        return False
    if f.end and rec.occurred_at >= f.end:
        return False
    return not needle or common.matches(rec.payload, needle)


def summarise(
    vault: Vault, category: str, f: common.Filters, refs: References, chosen: str | None
) -> Summary:
    """The summary of the newest ``LIMIT`` records of the source up to the last day asked
    for (patients and dated reference resources before the first day too; the rest as the
    filters select)."""
    s = Summary()
    needle = f.q.lower()
    found = vault.records(category, until=f.end, newest=True, source=f.source)
    for n, rec in enumerate(found):
        if n == LIMIT:
            s.cut = True
            break
        p, kind = rec.payload, _kind(rec.payload)
        res = _resource(p)
        if kind in REFERENCE_TYPES:
            if res:
                refs.add(rec.id, res)
            continue
        if kind == "Patient":
            if res and all(pt["key"] != res.get("id") for pt in s.patients):
                s.patients.append(patient(rec.id, res))
            continue
        if not _selects(rec, f, needle):
            continue
        s.types[kind] += 1
        if chosen is None or kind == chosen:
            _take(s, rec, kind, res, refs)
    return s


def _take(s: Summary, rec: StoredRecord, kind: str, res: dict[str, Any], refs: References) -> None:
    p = rec.payload
    section = "Medication" if kind in MEDICATIONS else kind
    if section in SECTIONS:
        s.counts[section] += 1
        s.kinds.setdefault(section, kind)
        if len(s.sections.setdefault(section, [])) < SHOWN:
            s.sections[section].append(entry(rec, section, res, refs))
    if kind == "Observation" and res:
        _observation(s, rec, res)
    elif p.get("kind") in ("record", "activity_summary"):
        value = number(p.get("value"))
        if value is not None and p.get("start"):
            name = type_name(kind)
            unit = str(p.get("unit") or "")
            summed = any(part in kind for part in SUMMED)
            _point(s, name, unit, name, p["start"], value, summed)


def _observation(s: Summary, rec: StoredRecord, res: dict[str, Any]) -> None:
    p = rec.payload
    name = concept(res.get("code")) or str(p.get("display") or gettext("Observation"))
    parts = components(res)
    shown = value_text(res) or join(f"{n} {v}" for n, v in parts)
    latest = s.observations.get(name)
    if latest is None:
        s.observations[name] = {"id": rec.id, "when": p.get("start"), "value": shown, "n": 1}
    else:
        latest["n"] += 1
    when = p.get("start")
    if not when:
        return
    quantity = res.get("valueQuantity")
    if isinstance(quantity, dict) and number(quantity.get("value")) is not None:
        unit = str(quantity.get("unit") or quantity.get("code") or "")
        _point(s, name, unit, name, when, number(quantity["value"]), False)  # type: ignore[arg-type]
    for part in res.get("component") or ():
        q = part.get("valueQuantity") if isinstance(part, dict) else None
        if isinstance(q, dict) and number(q.get("value")) is not None:
            unit = str(q.get("unit") or q.get("code") or "")
            series = concept(part.get("code")) or name
            _point(s, name, unit, series, when, number(q["value"]), False)  # type: ignore[arg-type]


def _point(
    s: Summary, name: str, unit: str, series: str, when: str, value: Decimal, summed: bool
) -> None:
    measure = s.measures.setdefault((name, unit), Measure(name, unit, summed))
    measure.points.setdefault(series, []).append((when, value))


def patient(record_id: int, res: dict[str, Any]) -> dict[str, Any]:
    gender = res.get("gender")
    died = res.get("deceasedDateTime")
    return {
        "key": res.get("id"),
        "id": record_id,
        "name": human_name(res.get("name")) or gettext("unnamed"),
        "born": res.get("birthDate"),
        "gender": str(GENDERS.get(gender, gender)) if isinstance(gender, str) else None,
        "died": died if isinstance(died, str) else None,
        "lives": address(res.get("address")),
    }


def _start(res: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        value = res.get(key)
        if isinstance(value, dict):
            value = value.get("start")
        if isinstance(value, str):
            return value
    return None


def _people(refs: References, items: Any, key: str) -> str | None:
    found = [i.get(key) for i in items if isinstance(i, dict)] if isinstance(items, list) else []
    return refs.name(found) if found else None


def entry(rec: StoredRecord, section: str, res: dict[str, Any], refs: References) -> dict[str, Any]:
    """One line of a section: what, when, and who or where from the cited resources."""
    return {"id": rec.id, **entry_of(rec.payload, section, res, refs)}


def entry_of(
    p: dict[str, Any], section: str, res: dict[str, Any], refs: References
) -> dict[str, Any]:
    line: dict[str, Any] = {"when": p.get("start"), "status": None}
    status = res.get("status")
    line["status"] = status if isinstance(status, str) else None
    if section == "Condition":
        line["name"] = concept(res.get("code")) or p.get("display")
        line["status"] = concept(res.get("clinicalStatus")) or line["status"]
        line["until"] = _start(res, "abatementDateTime", "abatementPeriod")
        line["when"] = _start(res, "onsetDateTime", "onsetPeriod") or p.get("start")
    elif section == "Medication":
        line["name"] = medication(res, refs)
        who = res.get("requester") or res.get("informationSource") or res.get("performer")
        line["who"] = refs.name(who)
        dosage = res.get("dosageInstruction") or res.get("dosage")
        line["dosage"] = (
            join(d.get("text") for d in dosage if isinstance(d, dict))
            if isinstance(dosage, list)
            else None
        )
        line["why"] = concept(res.get("reasonCode"))
    elif section == "Immunization":
        line["name"] = concept(res.get("vaccineCode")) or p.get("display")
        line["where"] = refs.name(res.get("location"))
        line["who"] = _people(refs, res.get("performer"), "actor")
    elif section == "Procedure":
        line["name"] = concept(res.get("code")) or p.get("display")
        line["where"] = refs.name(res.get("location"))
        line["who"] = _people(refs, res.get("performer"), "actor")
    else:  # Encounter
        line["name"] = concept(res.get("type")) or concept(res.get("class")) or p.get("display")
        line["until"] = p.get("end")
        line["who"] = _people(refs, res.get("participant"), "individual")
        line["where"] = _people(refs, res.get("location"), "location") or refs.name(
            res.get("serviceProvider")
        )
    return line


def place(record_id: int, res: dict[str, Any]) -> dict[str, Any]:
    """A reference resource for "People and places": its name, what it is, where."""
    return {
        "id": record_id,
        "name": resource_name(res) or gettext("unnamed"),
        "kind": type_name(str(res.get("resourceType", ""))),
        "what": concept(res.get("type")) if res.get("resourceType") != "Device" else None,
        "where": address(res.get("address")),
    }


def measure_charts(measures: dict[tuple[str, str], Measure]) -> list[charts.Chart]:
    """A line chart for each measure with several values: per day or month when long."""
    out = []
    for (name, unit), m in sorted(measures.items(), key=lambda i: i[0][0].lower()):
        if sum(len(points) for points in m.points.values()) < 2 or len(out) == MAX_CHARTS:
            continue
        out.append(measure_chart(name, unit, m))
    return out


def _binned(m: Measure, width: int) -> dict[str, dict[str, Decimal]]:
    """Each series' values per period (``width`` characters of the UTC date): summed for a
    measure that adds up over a day (steps), else averaged."""
    out: dict[str, dict[str, Decimal]] = {}
    for series, points in m.points.items():
        groups: dict[str, list[Decimal]] = defaultdict(list)
        for when, value in points:
            groups[when[:width]].append(value)
        out[series] = {
            k: sum(v, Decimal(0)) if m.summed else sum(v, Decimal(0)) / len(v)
            for k, v in groups.items()
        }
    return out


def measure_chart(name: str, unit: str, m: Measure) -> charts.Chart:
    shown_unit = amount(1, unit).removeprefix("1").strip()
    title = f"{name} ({shown_unit})" if shown_unit else name
    values = {s: dict(points) for s, points in m.points.items()}
    keys = {k for v in values.values() for k in v}
    shown = locale.moment
    if len(keys) > MAX_POINTS:
        values, shown = _binned(m, 10), locale.day
        keys = {k for v in values.values() for k in v}
        per = gettext("total per day") if m.summed else gettext("average per day")
        if len(keys) > MAX_POINTS * 2:
            values, shown = _binned(m, 7), locale.month
            keys = {k for v in values.values() for k in v}
            per = gettext("total per month") if m.summed else gettext("average per month")
        title = gettext("%(title)s, %(per)s", title=title, per=per)
    labels = sorted(keys)
    series = [
        charts.Series(s, [float(v[k]) if k in v else None for k in labels])
        for s, v in sorted(values.items())
    ]
    return charts.lines(
        title,
        [shown(k) for k in labels],
        series,
        show=lambda v: amount(round(Decimal(str(v)), 2).normalize(), unit),
    )


def row(rec: StoredRecord, refs: References) -> dict[str, Any]:
    """A line of the record list: when, what type, what, and its value."""
    p, res = rec.payload, _resource(rec.payload)
    kind = _kind(p)
    what = p.get("display") or concept(res.get("code")) or concept(res.get("type"))
    value = None
    if res:
        value = value_text(res) or join(f"{n} {v}" for n, v in components(res)) or None
        if kind in MEDICATIONS:
            what = medication(res, refs)
    else:
        what = gettext("from %(source)s", source=p["source"]) if p.get("source") else None
        if p.get("value") is not None:
            value = apple_value(kind, p.get("value"), p.get("unit"))
    return {
        "id": rec.id,
        "when": p.get("start"),
        "timed": "T" in str(p.get("start") or ""),
        "type": type_name(kind),
        "what": what if isinstance(what, str) else None,
        "value": value,
    }


def describe(payload: dict[str, Any], refs: References | None = None) -> list[tuple[str, str]]:
    """One health record's fields as labelled lines in words, for its record page:
    ``[("Medication", "Ibuprofen 200 MG Oral Tablet"), ("Prescribed", "21 May 2016"),
    ("Prescriber", "Dr. Bennett146 Breitenberg711")]``. ``refs`` (from :func:`references`)
    names the resources a reference points at when the record gives no display. Empty
    values are left out; an undated record says "undated"."""
    refs = refs or References()
    res, kind = _resource(payload), _kind(payload)
    out: list[tuple[str, Any]] = [(gettext("Type"), type_name(kind))]
    if not res:
        out += _apple(payload)
    elif kind in REFERENCE_TYPES or kind == "Patient":
        out += _reference(kind, res)
    else:
        out += _clinical(payload, kind, res, refs)
    return [(str(label), str(text)) for label, text in out if text not in (None, "")]


def _apple(p: dict[str, Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [
        (
            gettext("Value"),
            apple_value(_kind(p), p["value"], p.get("unit")) if p.get("value") else None,
        ),
        (gettext("Start"), locale.moment(p.get("start"))),
        (gettext("End"), locale.moment(p["end"]) if p.get("end") else None),
        (gettext("Recorded by"), p.get("source")),
    ]
    details = p.get("details")
    if isinstance(details, dict):
        for key, value in details.items():
            name = words(str(key).removeprefix("HKMetadataKey").removeprefix("HK"))
            out.append((name.capitalize(), value if isinstance(value, str) else None))
    return out


def _reference(kind: str, res: dict[str, Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [(gettext("Name"), resource_name(res))]
    if kind == "Patient":
        info = patient(0, res)
        out += [
            (gettext("Born"), locale.day(info["born"]) if info["born"] else None),
            (gettext("Gender"), info["gender"]),
            (gettext("Died"), locale.day(info["died"]) if info["died"] else None),
        ]
    elif kind != "Device":
        out.append((gettext("Kind"), concept(res.get("type"))))
    out.append((gettext("Address"), address(res.get("address"))))
    return out


def _clinical(
    p: dict[str, Any], kind: str, res: dict[str, Any], refs: References
) -> list[tuple[str, Any]]:
    section = "Medication" if kind in MEDICATIONS else kind
    when = locale.day(p.get("start"))
    if kind == "Observation":
        out: list[tuple[str, Any]] = [
            (gettext("Measure"), concept(res.get("code")) or p.get("display")),
            (gettext("Value"), value_text(res)),
            *components(res),
            (gettext("Taken"), locale.moment(p.get("start"))),
            (gettext("Kind"), concept(res.get("category"))),
        ]
    elif section in SECTIONS:
        line = entry_of(p, section, res, refs)
        named = {
            "Condition": (gettext("Condition"), gettext("Onset")),
            "Medication": (gettext("Medication"), gettext("Prescribed")),
            "Immunization": (gettext("Vaccine"), gettext("Given")),
            "Procedure": (gettext("Procedure"), gettext("Performed")),
            "Encounter": (gettext("Visit"), gettext("Started")),
        }[section]
        out = [(named[0], line.get("name")), (named[1], locale.day(line["when"]))]
        if line.get("until"):
            ended = gettext("Resolved") if section == "Condition" else gettext("Ended")
            out.append((ended, locale.day(line["until"])))
        who = gettext("Prescriber") if section == "Medication" else gettext("With")
        out += [
            (who, line.get("who")),
            (gettext("Where"), line.get("where")),
            (gettext("Dosage"), line.get("dosage")),
            (gettext("Reason"), line.get("why")),
        ]
    else:
        out = [
            (gettext("What"), p.get("display") or concept(res.get("code"))),
            (gettext("Date"), when),
            (gettext("Until"), locale.day(p["end"]) if p.get("end") else None),
        ]
    status = concept(res.get("clinicalStatus")) if kind == "Condition" else res.get("status")
    out.append((gettext("Status"), status if isinstance(status, str) else None))
    return out
