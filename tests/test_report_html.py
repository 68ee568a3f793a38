"""``Report.to_html()`` and ``otelperf report --format html``: the page rendered in headless
Chromium (Debian ``chromium``, driven by Playwright) and checked by what it shows.

One configured otelperf (a private registry, served on a free port for the CLI) records a
known batch run through real ``measure()`` calls and a TimelineRecorder sampled by hand at
the phase boundaries:

* ``load``: 6 calls, 10 items each (60 items); ``transform``: 4 calls, 25 items each (100);
* ``pipeline`` (a root, twice): ``extract`` sleeping 30 ms then ``store`` sleeping 5 ms, so
  extract's share of pipeline's critical path is several times store's;
* ``<script>alert(1)</script>``: 2 calls, an operation name that must show as text;
* cache ``sessions`` 3 hits and 1 miss; API ``vision``/``small`` 2 calls, 100 input and 20
  output tokens each at 0.25 USD.

The browser's network is cut: every request that is not the page's own file is aborted and
recorded, and the tests assert there were none.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import otelperf
from otelperf.cli import main
from otelperf.report import Report, build_report, from_registry
from otelperf.report.html import bins
from otelperf.report.timeline import TimelineRecorder
from tests.conftest import require_binary
from tests.test_report_cli import assert_one_line_error, run_cli

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]  # fmt: skip
SCRIPT_NAME = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def run() -> Iterator[dict[str, Any]]:
    """The known batch run above, its timeline, and the reports built from the registry."""
    t = otelperf.configure(service_name="html-test", prometheus_port=0,
                           registry=CollectorRegistry(), set_global=False)  # fmt: skip
    try:
        rec = TimelineRecorder(t.registry, interval=3600)  # sampled by hand, not by the clock
        rec.start()  # first point: nothing yet
        for _ in range(6):
            with otelperf.measure("load") as op:
                op.add_items(10)
        rec.sample()
        for _ in range(4):
            with otelperf.measure("transform") as op:
                time.sleep(0.002)
                op.add_items(25)
        rec.sample()
        for _ in range(2):
            with otelperf.measure("pipeline"):
                with otelperf.measure("extract"):
                    time.sleep(0.03)
                with otelperf.measure("store"):
                    time.sleep(0.005)
            with otelperf.measure(SCRIPT_NAME):
                pass
        for hit in (True, True, True, False):
            otelperf.record_cache("sessions", hit=hit)
        for _ in range(2):
            otelperf.record_api_call("vision", model="small", input_tokens=100,
                                     output_tokens=20, cost_usd=0.25)  # fmt: skip
        rec.stop()  # the final point
        yield {
            "telemetry": t,
            "points": rec.points(),
            "report": from_registry(t.registry, timeline=rec.points()),
            "bare": from_registry(t.registry),
        }
    finally:
        t.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module (the system's, never a downloaded one)."""
    require_binary(CHROMIUM)
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) missing")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Opened:
    """A page opened from a file with every non-file request aborted and recorded."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.page = browser.new_page(viewport={"width": 1100, "height": 900})
        self.blocked: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", self._dialog)
        self.page.route("**/*", self._route)
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_load_state("load")

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _route(self, route: Any) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def table_row(self, table: str, first: str) -> list[str]:
        """The cells' visible text of the row of ``table`` whose first cell is ``first``."""
        for row in self.page.locator(f"table.{table} tbody tr").all():
            cells = [c.strip() for c in row.locator("td").all_inner_texts()]
            if cells and cells[0] == first:
                return cells
        raise AssertionError(f"no row {first!r} in table {table}")


def write(tmp_path: Path, report: Report, name: str = "report.html") -> Path:
    path = tmp_path / name
    path.write_text(report.to_html(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def page(run: dict[str, Any], browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = write(tmp_path_factory.mktemp("html"), run["report"])
    opened = Opened(browser, path)
    yield opened
    opened.page.close()


# --- the recorded data itself ------------------------------------------------------------------


def test_the_timeline_holds_exact_cumulative_counts(run):
    points = run["points"]
    assert len(points) == 4  # start, after load, after transform, stop
    assert [p.calls.get("load", 0) for p in points] == [0, 6, 6, 6]
    assert [p.items.get("load", 0) for p in points] == [0, 60, 60, 60]
    assert [p.items.get("transform", 0) for p in points] == [0, 0, 100, 100]
    assert points[-1].calls[SCRIPT_NAME] == 2 and points[-1].calls["pipeline"] == 2
    assert [p.at for p in points] == sorted(p.at for p in points)
    assert run["report"].timeline == tuple(points) and run["bare"].timeline == ()


# --- what the page shows -----------------------------------------------------------------------


def test_the_page_needs_no_network_and_runs_no_script(page):
    assert page.blocked == []  # nothing but the file itself was even attempted
    assert page.requests == [page.page.url] and page.page.url.startswith("file://")
    assert page.page.evaluate("document.scripts.length") == 0
    assert page.dialogs == []


def test_the_network_check_sees_an_attempt(browser, tmp_path):
    """The harness itself: a page that does reach out is caught (so "none" above means none)."""
    path = tmp_path / "leaky.html"
    path.write_text('<!DOCTYPE html><p>x</p><img src="http://127.0.0.1:9/pixel.png">')
    opened = Opened(browser, path)
    try:
        assert opened.blocked == ["http://127.0.0.1:9/pixel.png"]
    finally:
        opened.page.close()


def test_the_page_references_nothing_outside_itself(run):
    page = run["report"].to_html()
    assert re.search(r"\b(src|href)\s*=", page) is None
    assert "url(" not in page and "@import" not in page and "<script" not in page
    assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';' in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_visible_figures_are_the_recorded_ones(page, run):
    text = page.page.inner_text("body")
    assert "this process: totals since it started" in text
    # operation, calls, items, items/s (over the uptime: checked from the report), ...
    load = page.table_row("operations", "load")
    transform = page.table_row("operations", "transform")
    assert load[:3] == ["load", "6", "60"] and transform[:3] == ["transform", "4", "100"]
    rates = {r.operation: r.items_per_second for r in run["report"].operations}
    assert rates["load"] is not None and float(load[3]) == pytest.approx(rates["load"], rel=1e-2)
    assert page.table_row("operations", "pipeline")[:3] == ["pipeline", "2", "-"]
    assert page.table_row("caches", "sessions") == ["sessions", "3", "1", "75.0"]
    assert page.table_row("apis", "vision small") == ["vision small", "2", "0", "200", "40",
                                                      "0.5"]  # fmt: skip
    assert "Resources" in text and page.page.locator("table.resources tbody tr").count() >= 3
    assert "Recommendations" in text and "Warnings" in text


def test_an_operation_named_like_a_script_shows_as_text(page):
    row = page.table_row("operations", SCRIPT_NAME)
    assert row[:2] == [SCRIPT_NAME, "2"]
    assert page.page.locator("h3", has_text=SCRIPT_NAME).count() >= 1
    assert page.page.evaluate("document.scripts.length") == 0 and page.dialogs == []


def _widths(page: Any, root: str) -> dict[str, float]:
    out = {}
    for g in page.page.locator(f'section.root[data-root="{root}"] g.bar-row').all():
        box = g.locator("rect.bar").bounding_box()
        assert box is not None and box["height"] > 0
        out[g.get_attribute("data-label")] = box["width"]
    return out


def test_each_roots_time_is_drawn_in_proportion_to_its_share(page, run):
    shares = {b.operation: b.share for b in run["report"].bottlenecks
              if b.root_operation == "pipeline"}  # fmt: skip
    widths = _widths(page, "pipeline")
    assert set(widths) == set(shares) >= {"extract", "store", "pipeline"}
    assert all(w > 0 for w in widths.values())
    assert shares["extract"] > 3 * shares["store"]  # 30 ms against 5 ms
    assert widths["extract"] > widths["store"]
    # Rendered widths follow the shares (to a pixel of rounding).
    scale = widths["extract"] / shares["extract"]
    for op, share in shares.items():
        assert widths[op] == pytest.approx(max(share * scale, scale / 290), abs=1.0), op
    assert _widths(page, "load") == {"load": pytest.approx(scale, abs=1.0)}  # the whole root


def test_latency_histograms_count_each_bucket_with_quantile_markers(page, run):
    for r in run["report"].operations:
        section = page.page.locator(f'section.latency[data-operation="{r.operation}"]')
        want = bins(r)
        rects = section.locator("rect.bin")
        assert rects.count() == len(want), r.operation
        titles = rects.evaluate_all("els => els.map(e => e.querySelector('title').textContent)")
        counts = [int(t.rsplit(": ", 1)[1]) for t in titles]
        assert sum(counts) == r.calls, (r.operation, titles)  # per bucket, not cumulative
        assert counts == [int(c) for _, c, _, _ in want]
        tallest = max(range(len(counts)), key=lambda i: counts[i])
        heights = [rects.nth(i).bounding_box()["height"] for i in range(len(counts))]
        assert heights[tallest] == max(heights) > 0
        marks = section.locator("g.marker")
        assert [m.get_attribute("data-quantile") for m in marks.all()] == ["p50", "p95", "p99"]
        assert all(m.bounding_box()["height"] > 0 for m in marks.all())
    load = page.page.locator('section.latency[data-operation="load"]').inner_text()
    assert re.search(r"p50 [\d.]+ µs|p50 [\d.]+ ms", load)


def test_the_throughput_chart_has_a_point_per_interval(page, run):
    n = len(run["points"])
    for field, ops in (("items", {"load", "transform"}),
                       ("calls", {"load", "transform", "pipeline", "extract", "store",
                                  SCRIPT_NAME})):  # fmt: skip
        lines = page.page.locator(f'div.throughput[data-field="{field}"] polyline.line')
        got = {}
        for line in lines.all():
            pairs = line.get_attribute("points").split()
            # a step per interval between samples: its start and its end
            assert int(line.get_attribute("data-points")) == len(pairs) == 2 * (n - 1)
            box = line.bounding_box()
            assert box is not None and box["width"] > 0
            got[line.get_attribute("data-series")] = pairs
        assert set(got) == ops, field
    # The legend names each line as text (the script-like name too).
    legend = page.page.locator('div.throughput[data-field="calls"] ul.legend').inner_text()
    assert SCRIPT_NAME in legend
    assert page.page.locator(".no-timeline").count() == 0


def test_without_a_timeline_the_page_says_so(run, browser, tmp_path):
    opened = Opened(browser, write(tmp_path, run["bare"]))
    try:
        note = opened.page.locator(".no-timeline")
        assert note.is_visible() and "No timeline" in note.inner_text()
        assert opened.page.locator("polyline").count() == 0
        assert opened.blocked == []
    finally:
        opened.page.close()


def test_a_screenshot_renders(page, tmp_path):
    shot = tmp_path / "report.png"
    page.page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_the_page_is_bounded(run):
    """A thousand-point timeline is thinned to the page's limit; tables keep ``top`` rows."""
    from otelperf.report.html import MAX_BARS, MAX_HISTOGRAMS, MAX_POINTS, thin
    from otelperf.report.model import TimelinePoint, Totals

    pts = [TimelinePoint(float(i), {"a": float(i)}, {}) for i in range(1000)]
    kept = thin(pts)
    assert len(kept) == MAX_POINTS and kept[0] is pts[0] and kept[-1] is pts[-1]
    report = from_registry(run["telemetry"].registry, top=2, timeline=pts)
    page = report.to_html()
    table = re.search(r'<table class="operations">.*?</table>', page)
    assert table is not None and table.group(0).count("<tr>") == 1 + 2  # header and top 2
    assert page.count('class="latency"') == 2
    assert f'data-points="{2 * (MAX_POINTS - 1)}"' in page
    assert len(page) < 200_000
    # Without --top (every row): at most MAX_HISTOGRAMS latency charts and MAX_BARS bars a root.
    totals = Totals(root_duration={"job": 40.0})
    for i in range(40):
        f = totals.op(f"op{i:02}")
        f.calls, f.duration_sum, f.buckets = 1.0, 1.0 + i, {1.0: 0.0, 60.0: 1.0, math.inf: 1.0}
        totals.critical_path[("job", f"op{i:02}")] = 1.0
    page = build_report(totals).to_html()
    assert page.count('class="latency"') == MAX_HISTOGRAMS == 30
    assert f"{40 - MAX_HISTOGRAMS} more not drawn" in page
    assert page.count('class="bar-row"') == MAX_BARS == 25
    assert "15 smaller shares not drawn" in page


# --- the command ---------------------------------------------------------------------------------


def test_cli_writes_the_page_from_a_served_endpoint(run, browser, tmp_path, capsys):
    out = tmp_path / "sub" / "report.html"
    out.parent.mkdir()
    code = main(["report", "--url", run["telemetry"].metrics_url, "--format", "html",
                 "--out", str(out)])  # fmt: skip
    stdout, stderr = capsys.readouterr()
    assert (code, stdout, stderr) == (0, f"wrote {out} (html)\n", "")
    opened = Opened(browser, out)
    try:
        assert opened.blocked == []
        text = opened.page.inner_text("body")
        assert f"{run['telemetry'].metrics_url}: totals since the process started" in text
        assert opened.table_row("operations", "load")[:3] == ["load", "6", "60"]
        assert opened.table_row("operations", SCRIPT_NAME)[:2] == [SCRIPT_NAME, "2"]
        assert opened.page.locator(".no-timeline").is_visible()  # a scrape has no timeline
    finally:
        opened.page.close()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        ([], ["--format html needs --out FILE"]),
        (["--out", "/nonexistent-dir/report.html"], ["--out='/nonexistent-dir/report.html'",
                                                     "no directory"]),
        (["--out", "/"], ["--out='/' is a directory"]),
    ],
)  # fmt: skip
def test_cli_errors_name_the_flag_or_file(args, fragments):
    # Checked before any request: the URL does not even answer.
    p = run_cli("--url", "http://127.0.0.1:1/metrics", "--format", "html", *args)
    assert_one_line_error(p, *fragments)


def test_cli_unwritable_file_names_it(run, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    target = blocker / "report.html"  # a file where the directory should be
    p = run_cli("--url", run["telemetry"].metrics_url, "--format", "html", "--out", str(target))
    assert_one_line_error(p, f"--out={str(target)!r}")
    assert not os.path.exists(target)
