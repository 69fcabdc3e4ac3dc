"""The status page at `/` is whole in its first answer, self-contained and read-only."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import re
from html.parser import HTMLParser
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from failover.api import page
from failover.api.document import status_document
from failover.api.history import Series, ShareHistory
from failover.api.page_service import SERVED_FOR, WATCHED_FOR, StatusPage
from failover.model import ClusterPlan, ClusterState, Plan, Ramp
from tests.actuators.test_file import make_plan
from tests.api.test_status import FakeSource, get


class Rows(HTMLParser):
    """Each cluster row's name, state and the text of its cells."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, Any]] = {}
        self._row: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "tr" and "data-n" in found:
            self._row = {"state": found["data-s"], "text": ""}
            self.rows[str(found["data-n"])] = self._row

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._row is not None:
            self._row["text"] += data + " "


def rows(html: str) -> dict[str, dict[str, Any]]:
    parser = Rows()
    parser.feed(html)
    return parser.rows


class PageSource(FakeSource):
    def __init__(self) -> None:
        super().__init__()
        self.history = ShareHistory()
        self.renders = 0

    def share_series(self, cluster: str) -> Series | None:
        return self.history.series(cluster)

    def decisions(self, limit: int) -> list[dict[str, Any]]:
        self.renders += 1
        return [{"at": "2026-12-02T01:20:00.986Z", "version": 2, "cluster": "b",
                 "action": "evacuate", "from_share": 0.5, "to_share": 0.0,
                 "reason": "dns timeout x3", "cause": "health"}][:limit]


def render(doc: dict[str, Any], decisions: list[dict[str, Any]] | None = None,
           series: dict[str, Series | None] | None = None) -> str:
    return page.main(doc, decisions or [], series or {}, 0.0, page.Sparklines())


def document(plan: Plan, **extra: Any) -> dict[str, Any]:
    source = FakeSource()
    source.plan = plan
    return {**status_document(source), **extra}


async def test_the_first_answer_carries_every_cluster_with_its_state_and_share(
        served: tuple[FakeSource, str]) -> None:
    """`curl /` alone shows each cluster's state and share: no script needed."""
    source, url = served
    source.plan = make_plan(4, {"east": 0.75, "west": 0.25, "north": 0.0})
    async with aiohttp.ClientSession() as session, session.get(url + "/") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        assert response.headers["Cache-Control"] == "no-store"
        html = await response.text()
    found = rows(html)
    assert {name: row["state"] for name, row in found.items()} == {
        "east": "healthy", "west": "healthy", "north": "unhealthy"}
    assert "75.0%" in found["east"]["text"]
    assert "25.0%" in found["west"]["text"]
    assert "dns timeout x3" in found["north"]["text"]
    assert "plan v4" in re.sub(r"<[^>]+>", "", html)


async def test_the_page_is_self_contained_and_runs_only_its_own_script(
        served: tuple[FakeSource, str]) -> None:
    """No external scripts, styles, fonts or images; the policy lets only the inline script
    run (by its hash) and reach only this listener."""
    source, url = served
    source.plan = make_plan(1, {"a": 1.0})
    async with aiohttp.ClientSession() as session, session.get(url + "/") as response:
        html = await response.text()
        policy = response.headers["Content-Security-Policy"]
    assert not re.search(r"\ssrc=|<link|@import|url\(|https?://", html)
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy
    assert "connect-src 'self'" in policy


async def test_nothing_on_the_page_can_change_state(served: tuple[FakeSource, str]) -> None:
    """Read-only: no form, no button, and `/` answers nothing but GET and HEAD."""
    source, url = served
    source.plan = make_plan(1, {"a": 1.0})
    status, html = await get(url + "/")
    assert status == 200
    assert not re.search(r"<form|<button|method=", html, re.I)
    async with aiohttp.ClientSession() as session:
        for method in ("POST", "PUT", "DELETE"):
            async with session.request(method, url + "/") as response:
                assert response.status == 405


async def test_the_refresh_gets_only_main(served: tuple[FakeSource, str]) -> None:
    """`?part=main` is the fragment the script swaps in; any other part is refused."""
    source, url = served
    source.plan = make_plan(1, {"a": 1.0})
    status, fragment = await get(url + "/?part=main")
    assert status == 200
    assert fragment.startswith("<section id=plan")
    assert "<html" not in fragment
    assert "a" in rows(fragment)
    status, body = await get(url + "/?part=everything")
    assert status == 400
    assert "part must be main" in body


async def test_a_page_without_a_plan_yet_says_so() -> None:
    """Before the first plan the page still answers, with no clusters."""
    html = render(status_document(FakeSource()))
    assert "no clusters" in html


def test_names_and_reasons_are_shown_as_text_never_as_markup() -> None:
    """A reason carries probe replies and a name comes from registrations: escaped."""
    hostile = "<script>alert(1)</script>' onmouseover='x"
    plan = Plan(1, 0.0, (ClusterPlan("a", 1.0, 1.0, ClusterState.HEALTHY, 1, 1.0, 1.0,
                                     hostile),), False, None)
    html = render(document(plan), [{"at": "x" * 23, "version": 1, "cluster": "a",
                                    "action": "ramp", "from_share": 0.0, "to_share": 1.0,
                                    "reason": hostile}])
    assert "<script>" not in html
    assert "' onmouseover=" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2


def test_frozen_shed_recoveries_and_queue_are_plain_to_see() -> None:
    """Freeze with its reason, shed demand, the recoveries with their ramp progress and the
    queue in order are on the page."""
    ramp = Ramp(level=0.25, limit=None, action="timed", reason="slow-start pace")
    plan = Plan(7, 0.0, (
        ClusterPlan("a", 0.6, 0.5, ClusterState.HEALTHY, 1, 1.0, 1.0, "all checks passing"),
        ClusterPlan("b", 0.1, 0.4, ClusterState.RECOVERING, 2, 1.0, 1.0, "recovering",
                    ramp=ramp),
        ClusterPlan("c", 0.0, 0.1, ClusterState.WAITING, 3, 1.0, 1.0, "queued"),
        ClusterPlan("d", 0.0, 0.1, ClusterState.WAITING, 4, 1.0, 1.0, "queued"),
    ), True, "operator", slots=1, slots_reason="1 ramp(s) backed off: holding", shed=0.05)
    text = re.sub(r"<[^>]+>", " ", render(document(plan)))
    text = re.sub(r"\s+", " ", text)
    assert "Frozen: the last good weights stay in force (operator)" in text
    assert "5.0% of demand is shed" in text
    assert "1 active, 2 queued, up to 1 at once: 1 ramp(s) backed off: holding" in text
    assert "b 25% of 40.0% timed timed slow-start pace" in text
    assert "c queued, #1" in text
    assert "d queued, #2" in text


def test_the_coordination_section_shows_role_leader_and_vantages() -> None:
    """In the distributed mode the page names the role, the leader, each vantage's standing
    and each cluster's verdicts from the vantages."""
    doc = document(make_plan(1, {"a": 1.0}), role="follower",
                   leader={"vantage": "v2", "since": "2026-12-02T01:00:00Z"},
                   etcd={"ok": True, "error": None},
                   vantages=[{"name": "v1", "fresh": True, "age_s": 0.4, "excluded": False,
                              "reason": None},
                             {"name": "v3", "fresh": False, "age_s": 31.0, "excluded": True,
                              "reason": "stale"}])
    doc["clusters"][0]["vantages"] = {"v1": "passing", "v2": "passing", "v3": "unknown"}
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", render(doc)))
    assert "role follower · leader v2 since 2026-12-02T01:00:00Z · etcd ok" in text
    assert "v3 stale 31.0 s excluded: stale" in text
    assert "2/3 passing" in text


def test_a_sparkline_steps_down_and_back_with_the_share() -> None:
    """The history line drops where the share fell to 0 and climbs where it came back; the
    window, 180 steps to the last plan's, is the SVG's viewBox."""
    history = ShareHistory(window=900, step=5)
    for at, share in ((0.0, 0.5), (300.0, 0.0), (600.0, 0.5)):
        history.record(Plan(1, at, (ClusterPlan("a", share, 0.5, ClusterState.HEALTHY, 1,
                                                1.0, 1.0, ""),), False, None))
    html = render(document(make_plan(1, {"a": 0.5})), series={"a": history.series("a")})
    svg = re.search(r"<svg [^>]*viewBox='([^']+)'[^>]*><path d='([^']+)'", html)
    assert svg is not None
    low, high = page.SPARK_HEIGHT - 1, page.SPARK_HEIGHT - 1 - (page.SPARK_HEIGHT - 2)
    assert svg.group(1) == f"-59 0 180 {page.SPARK_HEIGHT}"
    assert svg.group(2) == f"M0 {high}H60V{low}H120V{high}h1e6"


def test_a_line_is_drawn_again_only_when_its_points_change() -> None:
    """A steady cluster's path is reused from render to render as the window moves."""
    history = ShareHistory(window=900, step=5)
    sparks = page.Sparklines()

    def drawn(at: float, share: float) -> str:
        history.record(Plan(1, at, (ClusterPlan("a", share, 0.5, ClusterState.HEALTHY, 1,
                                                1.0, 1.0, ""),), False, None))
        sparks.start()
        return sparks.svg("a", history.series("a"), 0.5)

    first = drawn(0.0, 0.5)
    later = drawn(100.0, 0.5)
    assert first.split("><", 1)[1] == later.split("><", 1)[1]
    assert first != later  # the viewBox moved
    assert "H20V" in drawn(100.0, 0.0)


@pytest.mark.looptime
async def test_viewers_share_renders_made_ahead_of_them_while_anyone_watches() -> None:
    """However many pages refresh, the daemon renders once per PAGE_MAX_AGE, ahead of the
    requests, so none waits for a render; renders stop once nobody has asked for
    WATCHED_FOR, and the next request after that waits for a fresh one."""
    source = PageSource()
    source.plan = make_plan(1, {"a": 1.0})
    loop = asyncio.get_running_loop()
    status_page = StatusPage(source, wall=lambda: 0.0)
    try:
        first = await asyncio.gather(*(status_page.rendered() for _ in range(20)))
        assert source.renders == 1
        assert len({id(r) for r in first}) == 1
        start = loop.time()
        for _ in range(10):  # a page refreshing every 2 s for 20 s
            await asyncio.sleep(2.0)
            rendered = await status_page.rendered()
            assert loop.time() - rendered.at < SERVED_FOR
        assert loop.time() - start == 20.0  # never waited: a render was always ready
        assert 18 <= source.renders <= 22
        await asyncio.sleep(WATCHED_FOR + 5)
        idle = source.renders
        await asyncio.sleep(60)
        assert source.renders == idle  # nobody watching: no renders
        rendered = await status_page.rendered()
        assert source.renders == idle + 1
        assert rendered.at == loop.time()
    finally:
        await status_page.close(web.Application())


@pytest.mark.looptime
async def test_a_failed_render_is_counted_and_logged_and_the_last_good_one_served(
        caplog: pytest.LogCaptureFixture) -> None:
    """A render that raises is counted and logged, and renders go on; the page is served
    from the last good render while it is young enough, then a request gets the error."""
    source = PageSource()
    source.plan = make_plan(1, {"a": 1.0})
    failures: list[int] = []
    status_page = StatusPage(source, failed=lambda: failures.append(1))
    try:
        good = await status_page.rendered()
        source.share_series = lambda _: Series(0, 9, ((0, "broken"),))  # type: ignore[assignment,method-assign]
        await asyncio.sleep(1.5)
        assert failures == [1]
        assert "status page render failed" in caplog.text
        assert await status_page.rendered() is good
        await asyncio.sleep(SERVED_FOR - 1.0)
        with pytest.raises(TypeError):
            await status_page.rendered()
        assert len(failures) >= 2
    finally:
        await status_page.close(web.Application())


async def test_a_viewer_gets_the_page_gzipped_when_it_asks(
        served: tuple[FakeSource, str]) -> None:
    """Most of a megabyte at a thousand clusters: compressed for a browser, plain for curl."""
    source, url = served
    source.plan = make_plan(1, {"a": 1.0})
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        async with session.get(url + "/", headers={"Accept-Encoding": "gzip"}) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            assert b"<section id=plan" in gzip.decompress(await response.read())
        async with session.get(url + "/", headers={"Accept-Encoding": "identity"}) as response:
            assert "Content-Encoding" not in response.headers
            assert b"<section id=plan" in await response.read()


@pytest.mark.parametrize("fraction", [0.0, 0.000123, 0.0042, 0.05, 0.5, 1.0])
def test_shares_read_as_percentages_with_their_precision(fraction: float) -> None:
    """Tiny fleet shares keep two significant digits rather than rounding to 0%."""
    shown = page._pct(fraction)
    assert shown.endswith("%")
    assert float(shown[:-1]) == pytest.approx(fraction * 100, rel=0.05)
