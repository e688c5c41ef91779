"""The screenshot tour (``python -m sim tour``, docs/screens.md): it runs against the demo's
processes, writes its pictures, and fails when a page throws or logs a console error; and
the report labels it pictures are names, not codes, from the demo's first minute."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from central.reports.labels import labels_from_store
from central.store import open_store
from sim import tour
from tests.browser import browser_fixture, need_browser  # noqa: F401
from tests.uplink_support import pg_url_fixture, store_url_fixture  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.browser
def test_the_quick_tour_runs_the_demo_and_saves_every_picture_of_its_set(
        tmp_path: Path) -> None:
    """The reduced set, end to end, as CI runs it: the demo started, every page of the set
    pictured, no page error (timeout: the whole demo's start and stop included). My bookings
    shows only after signing in with the SMS outbox's code, a remote ticket and a booking."""
    need_browser()
    out = tmp_path / "shots"
    run = subprocess.run([sys.executable, "-m", "sim", "tour", "--quick", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    made = sorted(p.stem for p in out.glob("*.png"))
    assert made == ["caller-t2-landscape", "centre-live-province", "centre-report",
                    "customer-branches-phone", "customer-me-phone", "hall-landscape",
                    "kiosk-start-portrait",
                    "kiosk-start-portrait-en", "lobby-landscape"], made
    assert all((out / f"{n}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for n in made)


@pytest.mark.browser
def test_a_page_that_throws_or_logs_an_error_fails_the_tour(tmp_path: Path,
                                                            browser: Any) -> None:
    """Served by Playwright's router, no demo: one page throws, one fetches a missing file,
    one is clean; the tour names the first two and saves all three."""
    pages = {"/throws": "<script>null.x</script>",
             "/missing": "<script>fetch('/nothing.json')</script>",
             "/clean": "<p>好</p>"}
    t = tour.Tour(browser, "http://tour.test", "http://tour.test", tmp_path)
    original = browser.new_context

    def routed(**kw: Any) -> Any:
        context = original(**kw)

        def answer(route: Any) -> None:
            path = "/" + route.request.url.split("/", 3)[3]
            if path in pages:
                route.fulfill(status=200, content_type="text/html", body=pages[path])
            else:
                route.fulfill(status=404, body="")

        context.route("**/*", answer)
        return context

    t.browser = type("B", (), {"new_context": staticmethod(routed)})()
    for path in pages:
        with t.page(t.box, path, tour.PHONE) as p:
            t.shot(p, path.strip("/"))
    problems = t.problems()
    assert len(problems) == 2, problems
    assert problems[0].startswith("throws (http://tour.test/throws): uncaught:"), problems
    assert problems[1].startswith("missing (http://tour.test/missing): console error:"), problems
    assert "404" in problems[1]
    assert sorted(p.stem for p in tmp_path.glob("*.png")) == ["clean", "missing", "throws"]
    assert tour.report(t, 0.0) == 1


def test_report_labels_cached_before_a_branch_spoke_name_its_businesses_once_it_does(
        store_url: str) -> None:
    """The alert desk reads the labels as the centre starts, before any branch has sent a
    snapshot; the report a minute later still named the business ``A``. A branch's first
    snapshot now refreshes the cached names."""
    store = open_store(store_url)
    try:
        assert labels_from_store(store).queue("A") == "A"  # nothing heard yet: the code
        store.save_live({}, {"1001010001": {"status": {
            "branch_name": "郑州金水路支行", "queues": [{"id": "A", "name": "个人业务"}]}}}, {})
        labels = labels_from_store(store)
        assert labels.queue("A") == "个人业务"
        assert labels.branch("1001010001") == "郑州金水路支行"
    finally:
        store.close()
