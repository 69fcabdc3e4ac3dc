"""A query that fails is counted by class and logged once per episode; the values it gave
before keep their time, so they age, and nothing is raised."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from aiohttp import web

from failover.signals import PrometheusSource
from tests.servers import free_port
from tests.signals.conftest import LOOP, FakePrometheus, Rig, json_response, one, vector

QUERY = 'u{cluster="{cluster}"}'
LOGGER = "failover.signals.prometheus"


def _html(status: int) -> web.Response:
    return web.Response(text="<html><body>Bad Gateway</body></html>", status=status,
                        content_type="text/html")


def _raw(text: str) -> web.Response:
    return web.Response(text=text, status=200, content_type="application/json")


REPLIES: dict[str, tuple[Callable[[], web.Response], str, str]] = {
    # name: (reply, result, text the log must show); a reply is made per request, as an
    # aiohttp response can be sent once only.
    "http_500_html": (lambda: _html(500), "error", "HTTP 500: <html><body>Bad Gateway"),
    "http_400_api_error": (
        lambda: json_response({"status": "error", "errorType": "bad_data",
                       "error": "1:5: parse error: unexpected <EOF>"}, status=400),
        "error", "HTTP 400: bad_data: 1:5: parse error: unexpected <EOF>"),
    "http_503_api_error": (
        lambda: json_response({"status": "error", "errorType": "unavailable",
                       "error": "too many queries"}, status=503),
        "error", "HTTP 503: unavailable: too many queries"),
    "status_error_200": (
        lambda: json_response({"status": "error", "errorType": "execution", "error": "boom"}),
        "error", "execution: boom"),
    "html_200": (lambda: _html(200), "bad_reply", "reply is not JSON"),
    "bad_json": (lambda: _raw('{"status": "success", "data": '), "bad_reply",
                 "reply is not JSON"),
    "matrix": (lambda: json_response({"status": "success", "data": {"resultType": "matrix",
                                                            "result": []}}),
               "bad_reply", "resultType 'matrix'"),
    "not_an_api_document": (lambda: json_response([1, 2, 3]), "bad_reply",
                            "not a Prometheus API document"),
    "bad_timestamp": (lambda: json_response({"status": "success", "data": {
        "resultType": "vector", "result": [{"metric": {}, "value": ["soon", "1"]}]}}),
        "bad_reply", "timestamp 'soon' is not a number"),
}


async def _first_good_round(rig: Rig, fake: FakePrometheus) -> PrometheusSource:
    rig.clusters = ["a"]
    fake.replies = {'u{cluster="a"}': one("0.5")}
    source = rig.source({"utilization": QUERY}, timeout=0.3, interval=0.3)
    await source.run_round()
    assert source.signals().clusters["a"].measured_at == LOOP - 10
    return source


@pytest.mark.parametrize("case", sorted(REPLIES))
async def test_a_failed_query_keeps_the_old_value_and_its_time(
        rig: Rig, fake: FakePrometheus, caplog: pytest.LogCaptureFixture, case: str) -> None:
    """Each kind of bad reply is counted under its class and logged with what was wrong; the
    value from before stays, dated as before, so it ages."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    reply, result, shown = REPLIES[case]
    source = await _first_good_round(rig, fake)

    async def answer(expr: str) -> web.StreamResponse:
        return reply()

    fake.handler = answer
    rig.advance(30)
    await source.run_round()
    assert rig.count(result) == 1
    assert source.signals().clusters["a"].measured_at == LOOP - 10, "not refreshed"
    assert source.signals().clusters["a"].utilization == 0.5
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert shown in warnings[0]
    assert 'u{cluster="a"}' in warnings[0], "the log names the query"


async def test_timeout(rig: Rig, fake: FakePrometheus, caplog: pytest.LogCaptureFixture) -> None:
    """A query with no reply within ``timeout`` counts as ``timeout``."""
    source = await _first_good_round(rig, fake)
    fake.handler = fake.hang
    await source.run_round()
    assert rig.count("timeout") == 1
    assert "no reply within 0.3s" in caplog.text
    assert source.signals().clusters["a"].utilization == 0.5


async def test_connection_refused(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    """Nobody listening at the URL: ``error``, with the reason logged."""
    rig.clusters = ["a"]
    rig.fake.port = free_port()
    source = rig.source({"utilization": QUERY})
    await source.run_round()
    assert rig.count("error") == 1
    assert "ClientConnectorError" in caplog.text
    assert source.signals().clusters == {}


async def test_reply_too_large_is_refused(rig: Rig, fake: FakePrometheus,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A reply over the size cap (a query that forgot to aggregate) is ``bad_reply``."""
    monkeypatch.setattr("failover.signals.prometheus.MAX_REPLY_BYTES", 1000)
    rig.clusters = ["a"]
    fake.replies = {"u": vector(*(({"cluster": "a", "pod": f"p{i}"}, "1") for i in range(100)))}
    source = rig.source({"utilization": "u"})
    await source.run_round()
    assert rig.count("bad_reply") == 1


async def test_failing_is_logged_once_and_recovery_once(
        rig: Rig, fake: FakePrometheus, caplog: pytest.LogCaptureFixture) -> None:
    """Three failed rounds: three counted, one warning; the first good round: one info."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    source = await _first_good_round(rig, fake)

    async def broken(expr: str) -> web.StreamResponse:
        return _html(502)

    fake.handler = broken
    for _ in range(3):
        await source.run_round()
    fake.handler = None
    await source.run_round()
    await source.run_round()
    assert rig.count("error") == 3
    assert rig.count("ok") == 3
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in messages] == ["WARNING", "INFO"], messages
    assert "HTTP 502" in messages[0][1]
    assert "answers again" in messages[1][1]


async def test_a_change_of_failure_is_logged(
        rig: Rig, fake: FakePrometheus, caplog: pytest.LogCaptureFixture) -> None:
    """From one kind of failure to another is news: logged again."""
    source = await _first_good_round(rig, fake)

    async def broken(expr: str) -> web.StreamResponse:
        return _html(502)

    fake.handler = broken
    await source.run_round()
    fake.handler = fake.hang
    await source.run_round()
    await source.run_round()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "HTTP 502" in warnings[0]
    assert "timeout" in warnings[1]


async def test_one_bad_query_spoils_no_other(rig: Rig, fake: FakePrometheus) -> None:
    """A failing query for one cluster leaves the others' queries and values alone."""
    rig.clusters = ["a", "b"]

    async def answer(expr: str) -> web.StreamResponse:
        if expr == 'u{cluster="a"}':
            return _html(500)
        return json_response(one("0.25"))

    fake.handler = answer
    source = rig.source({"utilization": QUERY})
    await source.run_round()
    assert {n: s.utilization for n, s in source.signals().clusters.items()} == {"b": 0.25}
    assert (rig.count("error"), rig.count("ok")) == (1, 1)
