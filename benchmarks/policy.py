"""Policy benchmark: one `decide()` against 200 rules, against a plain function call.

Run it as a script (``python benchmarks/policy.py``) or through ``benchmarks/run.py``
(``make bench``), which passes ``--rows N``: here, the decisions timed per round.

What one run does (see docs/benchmarks.md, section "Policy decisions"), all in-process:

1. Builds 200 rules of every kind, spread over the ten categories and the DPV purposes, as
   a policy file would (``parse_policy`` of generated TOML), and compiles them into the
   ``RuleSet`` that ``PolicySet.current()`` hands the API.
2. ``--repeats`` rounds, alternating: the baseline, a trivial function call with the same
   arguments (``f(request, rules, now)`` returning a constant), then ``decide(request,
   ruleset, now)`` for a typical API read (one category, a purpose, a time range; 72 of
   the 200 rules can apply to it; it is allowed, 25 of them narrow it). Each round times
   ``--rows`` calls with ``time.perf_counter`` and the garbage collector off. Median per
   call over the rounds.
3. Also timed, same way: the worst case (all 200 rules about the requested category); the
   typical read with the day's count rising by one on every call, as the API counts; the
   same two requests through ``evaluate``, which judges every rule on every call (the
   decision as it was made before the rule set kept a plan per request: the "before" of the
   same run); a request over a rate limit (decided afresh on every call, its words giving
   the count); a plain list of 200 rules (compiled on every call), and ``explain_request``
   for a three-category consent request.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from _common import finish, verdicts

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pds.policy import PURPOSES, Request, RuleSet, decide, explain_request  # noqa: E402
from pds.policy.engine import evaluate  # noqa: E402
from pds.policyfiles.schema import parse_policy  # noqa: E402
from pds.vocabulary import CATEGORIES  # noqa: E402

NAME = "policy"
DEFAULT_CALLS = 20_000
TARGET_US = 10.0
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
KINDS_TOML = [
    'kind = "deny-category"\ncategory = "{cat}"\nexcept_clients = ["acme-bank"]',
    'kind = "deny-purpose"\npurpose = "{purpose}"\nactions = ["write"]\ncategory = "{cat}"',
    'kind = "aggregates-only"\ncategory = "{cat}"\npurpose = "{purpose}"',
    'kind = "max-history"\ndays = {days}\ncategory = "{cat}"',
    'kind = "max-grant"\ndays = {days}',
    'kind = "redact-fields"\ncategory = "transactions"\nfields = ["reference"]',
    'kind = "rate-limit"\nper_day = {big}',
    'kind = "allowed-purposes"\ncategory = "{cat}"\npurposes = ["{purpose}", "dpv:CreditChecking"]',
    'kind = "min-bucket"\nk = {k}\ncategory = "{cat}"',
]


def make_rules(n: int, only: str | None = None) -> str:
    """TOML for ``n`` rules of every kind, over all categories (or only one)."""
    purposes = sorted(PURPOSES)
    out = []
    for i in range(n):
        body = KINDS_TOML[i % len(KINDS_TOML)].format(
            cat=only or CATEGORIES[(i // len(KINDS_TOML)) % len(CATEGORIES)],
            purpose=purposes[i % len(purposes)],
            i=i,
            days=365 + i,
            big=10_000 + i,
            k=5 + i % 20,
        )
        out.append(f'[[rule]]\nid = "r{i}"\n{body}\n')
    return "\n".join(out)


def per_call_us(fn: Callable[[], object], calls: int) -> float:
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        took = time.perf_counter() - start
    finally:
        gc.enable()
    return took / calls * 1e6


def baseline(request: Request, rules: Any, now: datetime) -> bool:
    return True


def stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load": [round(x, 2) for x in os.getloadavg()],
    }


def run(calls: int, repeats: int) -> dict[str, Any]:
    spread = RuleSet(parse_policy(make_rules(200), "generated"))
    focused = RuleSet(parse_policy(make_rules(200, only="transactions"), "generated"))
    plain = list(spread)
    req = Request(
        "acme-bank",
        "read",
        ("transactions",),
        purpose="dpv:CreditChecking",
        since=date(2024, 1, 1),
        until=date(2026, 11, 1),
        requests_today=12,
    )
    consent = Request(
        "acme-bank",
        "read",
        ("transactions", "balances", "energy"),
        purpose="dpv:CreditChecking",
        since=date(2020, 1, 1),
        expires_in=365 * 86400,
    )
    # the API asks with the client's count so far today: one more on every call
    counting = itertools.cycle([replace(req, requests_today=n) for n in range(10_000)])
    over = replace(req, requests_today=10_050)  # over the generated rate limits of 10,000+
    d = decide(req, spread, NOW)
    for ruleset in (spread, focused):
        assert decide(req, ruleset, NOW) == evaluate(req, ruleset, NOW)
    assert decide(over, spread, NOW) == evaluate(over, spread, NOW)
    sides: dict[str, Callable[[], object]] = {
        "baseline": lambda: baseline(req, spread, NOW),
        "decide": lambda: decide(req, spread, NOW),
        "decide_worst": lambda: decide(req, focused, NOW),
        "decide_counting": lambda: decide(next(counting), spread, NOW),
        "evaluate": lambda: evaluate(req, spread, NOW),
        "evaluate_worst": lambda: evaluate(req, focused, NOW),
        "decide_over_rate": lambda: decide(over, spread, NOW),
        "decide_plain_list": lambda: decide(req, plain, NOW),
        "explain_consent": lambda: explain_request(consent, spread, NOW),
    }
    fast = ("baseline", "decide", "decide_worst", "decide_counting")
    rounds: dict[str, list[float]] = {k: [] for k in sides}
    for fn in sides.values():  # warm up
        per_call_us(fn, max(1, calls // 10))
    for _ in range(repeats):
        for name, fn in sides.items():
            n = calls if name in fast else max(1, calls // 10)
            rounds[name].append(per_call_us(fn, n))
    result: dict[str, Any] = {
        "name": NAME,
        "machine": machine(),
        "calls": calls,
        "repeats": repeats,
        "rules": len(spread),
        "rules_applying": len(spread.for_request(req)),
        "decision": {"allowed": d.allowed, "rule_ids": list(d.rule_ids)},
        "us_per_call": {k: stats(v) for k, v in rounds.items()},
    }
    med = {k: v["median"] for k, v in result["us_per_call"].items()}
    us, base, worst = med["decide"], med["baseline"], med["decide_worst"]
    result["ratio_vs_call"] = us / base
    result["ratio_worst_vs_call"] = worst / base
    result["speedup_vs_evaluate"] = med["evaluate"] / us
    result["speedup_worst_vs_evaluate"] = med["evaluate_worst"] / worst
    result["summary"] = [
        {
            "metric": "one decision, 200 rules (typical API read)",
            "value": f"{us:.2f} us ({us / base:.0f}x a plain call of {base:.3f} us;"
            f" {med['evaluate'] / us:.0f}x faster than judging every rule)",
            "target": f"<= {TARGET_US:.0f} us",
            "met": us <= TARGET_US,
        },
        {
            "metric": "one decision, 200 rules all about the category (worst case)",
            "value": f"{worst:.2f} us ({worst / base:.0f}x a plain call;"
            f" {med['evaluate_worst'] / worst:.0f}x faster than judging every rule)",
            "target": f"<= {TARGET_US:.0f} us",
            "met": worst <= TARGET_US,
        },
    ]
    return result


def report(r: dict[str, Any]) -> str:
    m, u = r["machine"], r["us_per_call"]
    lines = [
        f"Policy benchmark: {r['rules']} rules, {r['calls']:,} calls a round,"
        f" {r['repeats']} rounds",
        f"  machine: {m['nproc']} CPUs, {m['cpu']}, Python {m['python']}, {m['date']},"
        f" load average {m['load'][0]:.2f} {m['load'][1]:.2f} {m['load'][2]:.2f}",
        f"  typical request: {r['rules_applying']} of the rules apply; decision {r['decision']}",
        "  us per call: median (min, max)",
    ]
    for name, s in u.items():
        lines.append(f"  {name:<18} {s['median']:9.3f} ({s['min']:.3f}, {s['max']:.3f})")
    lines.append(f"  ratio decide / plain call: {r['ratio_vs_call']:.0f}x")
    lines.append(f"  ratio decide worst case / plain call: {r['ratio_worst_vs_call']:.0f}x")
    lines.append(
        f"  evaluate / decide: {r['speedup_vs_evaluate']:.0f}x typical,"
        f" {r['speedup_worst_vs_evaluate']:.0f}x worst case"
    )
    lines.extend(verdicts(r["summary"]))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=DEFAULT_CALLS, help="calls a round (20,000)")
    ap.add_argument("--repeats", type=int, default=5, help="rounds (5)")
    ap.add_argument("--json", dest="json_out", help="also write the results as JSON here")
    args = ap.parse_args(argv)
    result = run(args.rows, args.repeats)
    return finish(result, report(result), args.json_out)


if __name__ == "__main__":
    sys.exit(main())
