"""The server-drawn charts (pds.http.web.charts): exact geometry for bars side by side,
stacked bars and lines, the numbers table beside each, and the empty chart."""

from __future__ import annotations

from pds.http.web import charts
from pds.http.web.charts import Bar, Series


def test_bars_side_by_side_scale_to_the_largest_value() -> None:
    c = charts.bars(
        "Money in and out",
        ["2024-01", "2024-02"],
        [Series("In", [100.0, 50.0]), Series("Out", [-25.0, None])],
        show=lambda v: f"£{abs(v):.2f}",
    )
    slot = (640 - 56) / 2
    width = slot * 0.8 / 2
    assert c.bars == [
        Bar("2024-01", "In", "£100.00", round(56 + slot * 0.1, 2), 10.0, round(width, 2), 186.0, 0),
        Bar(
            "2024-01",
            "Out",
            "£25.00",
            round(56 + slot * 0.1 + width, 2),
            149.5,
            round(width, 2),
            46.5,
            1,
        ),
        Bar("2024-02", "In", "£50.00", round(56 + slot * 1.1, 2), 103.0, round(width, 2), 93.0, 0),
    ]
    assert c.rows == [("2024-01", ["£100.00", "£25.00"]), ("2024-02", ["£50.00", ""])]
    assert c.ticks == [(18.0, "£100.00"), (196.0, "£0.00")]
    assert c.xlabels == [(202.0, "2024-01"), (494.0, "2024-02")]
    assert not c.empty


def test_stacked_bars_pile_up_from_the_axis() -> None:
    c = charts.bars(
        "Spending", ["Jan"], [Series("Food", [30.0]), Series("Rent", [10.0])], stacked=True
    )
    assert [(b.series, b.y, b.height) for b in c.bars] == [
        ("Food", 56.5, 139.5),
        ("Rent", 10.0, 46.5),
    ]
    assert c.ticks[0] == (18.0, "40.0")


def test_only_every_nth_label_is_written_under_the_axis() -> None:
    days = [f"d{i}" for i in range(30)]
    c = charts.bars("Per day", days, [Series("n", [1.0] * 30)])
    assert [t for _, t in c.xlabels] == ["d0", "d4", "d8", "d12", "d16", "d20", "d24", "d28"]
    assert len(c.rows) == 30  # the table has every day


def test_lines_span_the_smallest_to_the_largest_value_and_skip_gaps() -> None:
    c = charts.lines(
        "Weight", ["a", "b", "c"], [Series("kg", [70.0, None, 80.0])], show=lambda v: f"{v:g} kg"
    )
    (line,) = c.lines
    slot = (640 - 56) / 3
    assert line.points == f"{round(56 + slot / 2, 2)},196.0 {round(56 + slot * 2.5, 2)},10.0"
    assert [(label, shown) for _, _, label, shown in line.dots] == [("a", "70 kg"), ("c", "80 kg")]
    assert c.ticks == [(18.0, "80 kg"), (196.0, "70 kg")]


def test_a_flat_line_is_drawn_in_the_middle() -> None:
    c = charts.lines("Steps", ["a", "b"], [Series("steps", [5.0, 5.0])])
    assert [y for _, y, _, _ in c.lines[0].dots] == [103.0, 103.0]


def test_no_value_is_an_empty_chart() -> None:
    assert charts.bars("Nothing", ["a"], [Series("n", [None])]).empty
    assert charts.lines("Nothing", [], [Series("n", [])]).lines == []


def test_the_macro_draws_the_chart_and_writes_its_numbers_as_a_table(tmp_path) -> None:
    from flask import render_template_string

    from pds.http.app import create_app
    from pds.settings import Settings

    c = charts.bars("Money in", ["2024-01"], [Series("In", [5.0])], show=lambda v: f"£{v:.2f}")
    app = create_app(Settings(home=tmp_path))
    with app.test_request_context():
        html = render_template_string(
            '{% from "_chart.html" import chart %}{{ chart(c, "money") }}', c=c
        )
        empty = render_template_string(
            '{% from "_chart.html" import chart %}{{ chart(c, "none") }}',
            c=charts.bars("Nothing here", ["a"], [Series("n", [None])]),
        )
    assert (
        '<svg class="chart" viewBox="0 0 640 220" role="img" aria-labelledby="money-title">' in html
    )
    assert '<title id="money-title">Money in</title>' in html
    assert "<title>2024-01: In, £5.00</title></rect>" in html
    assert '<tr><th scope="row">2024-01</th><td class="num">£5.00</td></tr>' in html
    assert 'class="legend"' not in html  # one series: no legend
    assert "<svg" not in empty
    assert "<p>Nothing to draw for these filters.</p>" in empty
