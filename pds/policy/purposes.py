"""Purposes: a small controlled vocabulary of W3C Data Privacy Vocabulary (DPV) purpose terms.

Each term is a real DPV purpose (https://w3id.org/dpv#, prefix ``dpv:``) with the words the
consent page and the owner read. ``broader`` follows DPV's ``skos:broader`` where both ends are
in this list, so a rule about ``dpv:Marketing`` also covers ``dpv:Advertising`` and
``dpv:PersonalisedAdvertising``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Purpose:
    term: str
    label: str
    broader: tuple[str, ...] = ()


_TERMS = (
    Purpose("dpv:ServiceProvision", "providing the service you signed up for"),
    Purpose("dpv:PaymentManagement", "handling your payments"),
    Purpose("dpv:CustomerManagement", "managing your account as their customer"),
    Purpose("dpv:CustomerCare", "helping you when you contact them", ("dpv:CustomerManagement",)),
    Purpose("dpv:CreditChecking", "checking your creditworthiness"),
    Purpose("dpv:FraudPreventionAndDetection", "preventing and detecting fraud"),
    Purpose("dpv:IdentityVerification", "checking that you are who you say you are"),
    Purpose("dpv:LegalCompliance", "meeting their legal obligations"),
    Purpose("dpv:Personalisation", "tailoring what they offer to you"),
    Purpose("dpv:ServiceOptimisation", "improving their service"),
    Purpose("dpv:Marketing", "marketing"),
    Purpose("dpv:DirectMarketing", "marketing to you directly", ("dpv:Marketing",)),
    Purpose("dpv:Advertising", "advertising", ("dpv:Marketing",)),
    Purpose(
        "dpv:PersonalisedAdvertising",
        "advertising tailored to you",
        ("dpv:Advertising", "dpv:Personalisation"),
    ),
    Purpose("dpv:ResearchAndDevelopment", "research and development"),
    Purpose("dpv:AcademicResearch", "academic research", ("dpv:ResearchAndDevelopment",)),
    Purpose("dpv:CommercialResearch", "commercial research", ("dpv:ResearchAndDevelopment",)),
    Purpose("dpv:SellDataToThirdParties", "selling your data to others"),
)

PURPOSES: dict[str, Purpose] = {p.term: p for p in _TERMS}


def _closure(term: str) -> frozenset[str]:
    seen = {term}
    todo = [term]
    while todo:
        for parent in PURPOSES[todo.pop()].broader:
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return frozenset(seen)


_COVERED_BY: dict[str, frozenset[str]] = {t: _closure(t) for t in PURPOSES}


def covered_by(purpose: str | None) -> frozenset[str]:
    """The terms a rule may name to cover ``purpose``: itself and every broader term.

    An unknown purpose (free text a business sent) is covered only by itself; no purpose at
    all is covered by nothing.
    """
    if purpose is None:
        return frozenset()
    return _COVERED_BY.get(purpose) or frozenset((purpose,))


def label(purpose: str | None) -> str:
    """Plain words for a purpose, e.g. ``checking your creditworthiness``."""
    if purpose is None:
        return "no stated purpose"
    known = PURPOSES.get(purpose)
    return known.label if known else f'"{purpose}" (not a purpose pds knows)'
