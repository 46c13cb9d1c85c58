"""`make bench-quick`'s reading and comparing (benchmarks/quick.py): the markers in
docs/benchmarks.md, the verdict on a figure, and where each figure is read from a
benchmark's JSON results. No benchmark runs here."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_quick", ROOT / "benchmarks" / "quick.py")
quick = importlib.util.module_from_spec(_spec)
sys.modules["bench_quick"] = quick  # its dataclasses look their module up
_spec.loader.exec_module(quick)

DOC_TEXT = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")


def documented(value: float, commit: str = "abc1234") -> object:
    return quick.Documented("import.vs_csv_insert_all", value, commit, 7)


def test_every_marker_in_the_docs_parses_and_names_a_figure_bench_quick_measures() -> None:
    markers = quick.read_markers(DOC_TEXT)
    assert DOC_TEXT.count("<!-- bench:") == len(markers) == 12
    assert sorted(markers) == sorted(quick.FIGURES)
    for name, doc in markers.items():
        assert quick.FIGURES[name].bench in quick.PLAN, name
        assert doc.value > 0, name
        assert len(doc.commit) == 7, name


def test_every_benchmark_has_a_plan_and_every_plan_a_benchmark() -> None:
    assert quick.discover() == sorted(quick.PLAN)
    assert quick.discover() == [
        "api",
        "audit",
        "connectors",
        "group_commit",
        "growth",
        "import",
        "policy",
        "search",
        "web_import",
    ]


def test_the_marker_of_a_figure_is_read_with_its_value_commit_and_line() -> None:
    text = (
        "# Title\n"
        "| pds / csv | **45%** <!-- bench: import.vs_csv_insert_all = 0.45 (commit 9c38cb8) --> |\n"
        "plain line <!-- not a marker -->\n"
        "web **0.87×** <!--bench:web_import.web_vs_cli=0.87 (commit 8da00ab)-->\n"
    )
    assert quick.read_markers(text) == {
        "import.vs_csv_insert_all": quick.Documented(
            "import.vs_csv_insert_all", 0.45, "9c38cb8", 2
        ),
        "web_import.web_vs_cli": quick.Documented("web_import.web_vs_cli", 0.87, "8da00ab", 4),
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "x <!-- bench: import.vs_csv_insert_all = 45% (commit 9c38cb8) -->",
            "line 2: unreadable bench marker "
            "'<!-- bench: import.vs_csv_insert_all = 45% (commit 9c38cb8) -->'",
        ),
        (
            "x <!-- bench: import.vs_csv_insert_all = 0.45 -->",
            "line 2: unreadable bench marker '<!-- bench: import.vs_csv_insert_all = 0.45 -->'",
        ),
        (
            "x <!-- bench: import = 0.45 (commit 9c38cb8) -->",
            "line 2: unreadable bench marker '<!-- bench: import = 0.45 (commit 9c38cb8) -->'",
        ),
    ],
)
def test_a_marker_that_does_not_parse_is_an_error_naming_its_line(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        quick.read_markers(f"text\n{line}\n")
    assert str(caught.value) == message


def test_a_figure_marked_twice_is_an_error() -> None:
    text = (
        "<!-- bench: policy.decide_vs_call = 22 (commit b6e94d4) -->\n"
        "\n"
        "<!-- bench: policy.decide_vs_call = 21 (commit b6e94d4) -->\n"
    )
    with pytest.raises(ValueError, match="marked twice") as caught:
        quick.read_markers(text)
    assert str(caught.value) == "line 3: policy.decide_vs_call is marked twice (first: line 1)"


@pytest.mark.parametrize(
    ("now", "was", "higher_is_better", "verdict"),
    [
        # a rate ratio (higher is better)
        (
            0.30,
            0.40,
            True,
            "SLOWER by 25%: import.vs_csv_insert_all 0.30 vs 0.40 in docs (commit abc1234)",
        ),
        (0.8, 1.0, True, "ok"),  # exactly 20% lower: not flagged
        (0.40, 0.40, True, "ok"),
        (0.44, 0.40, True, "ok"),
        (0.50, 0.40, True, "faster by 25%"),
        # a time ratio (lower is better): 1.50 -> 2.00 runs at 0.75 of the speed
        (
            2.00,
            1.50,
            False,
            "SLOWER by 25%: import.vs_csv_insert_all 2.00 vs 1.50 in docs (commit abc1234)",
        ),
        (1.25, 1.0, False, "ok"),  # exactly 20% slower: not flagged
        (1.0, 1.25, False, "faster by 25%"),
        (0.0, 0.40, True, "not comparable (a zero ratio)"),
    ],
)
def test_the_verdict_on_a_figure(
    now: float, was: float, higher_is_better: bool, verdict: str
) -> None:
    assert quick.compare("import.vs_csv_insert_all", now, documented(was), higher_is_better) == (
        verdict
    )


def test_a_figure_without_a_marker_is_said_so() -> None:
    assert quick.compare("import.vs_csv_insert_all", 0.3, None, True) == "no figure in docs"


# Each benchmark's JSON results, cut down to what bench-quick reads, with the ratio expected.
RESULTS = {
    "import.vs_csv_insert_all": (
        {
            "pds": {"import_rows_per_s_net_of_fixed": {"median": 3000.0}},
            "baseline": {"parse_plus_insert_rows_per_s": {"median": 12000.0}},
        },
        0.25,
    ),
    "connectors.bank_vs_midata": (
        {
            "pairs": [
                {"midata": {"wall_s": 4.0}, "bank_csv": {"wall_s": 5.0}},
                {"midata": {"wall_s": 3.0}, "bank_csv": {"wall_s": 4.0}},
                {"midata": {"wall_s": 9.0}, "bank_csv": {"wall_s": 10.0}},
            ]
        },
        0.8,
    ),
    "audit.verify_vs_floor": ({"verify": {"vault_s": {"ratio_to_floor": 1.5}}}, 1.5),
    "audit.bundle_verify_vs_floor": ({"verify": {"bundle_s": {"ratio_to_floor": 1.25}}}, 1.25),
    "group_commit.threads_4_vs_1": (
        {"per_threads": {"1": {"per_s": 2000.0}, "4": {"per_s": 3000.0}}},
        1.5,
    ),
    "growth.verify_per_entry_10x": ({"verify": {"per_entry_growth_cpu": 1.04}}, 1.04),
    "policy.decide_vs_call": ({"ratio_vs_call": 21.5}, 21.5),
    "policy.evaluate_vs_decide": ({"speedup_vs_evaluate": 30.0}, 30.0),
    "api.audited_vs_bare": ({"ratios": {"pds_over_bare": 0.25}}, 0.25),
    "search.two_words_vs_fts5": (
        {"queries": {"two words": {"pds_s": {"median": 0.06}, "fts_s": {"median": 0.01}}}},
        6.0,
    ),
    "web_import.web_vs_cli": ({"web": {"ratios": [0.9, 1.2, 0.8]}}, 0.9),
    "web_import.export_web_vs_cli": ({"export": {"ratios": [1.0, 1.5]}}, 1.25),
}


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_each_figure_is_read_from_its_benchmarks_results(name: str) -> None:
    result, ratio = RESULTS[name]
    assert quick.FIGURES[name].read(result) == pytest.approx(ratio)


def test_every_figure_has_a_reading_test() -> None:
    assert sorted(RESULTS) == sorted(quick.FIGURES)
