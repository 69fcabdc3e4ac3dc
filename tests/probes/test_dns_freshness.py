"""The heartbeat probe against a real dnsmasq: a resolver that answers but whose heartbeat
TXT record stopped advancing fails as ``stale``; one whose heartbeat is fresh passes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from failover.config import DnsCheck, Job, split_hostport
from tests.dnsmasq import Dnsmasq, running_dnsmasq
from tests.probes.conftest import Prober

MAX_AGE = 60.0


@pytest.fixture
def heartbeats(tmp_path: Path) -> Iterator[Dnsmasq]:
    """TXT records made relative to now, far enough from max_age that the test's own time
    cannot cross it."""
    now = int(time.time())
    with running_dnsmasq(
            tmp_path / "dnsmasq",
            f"--txt-record=fresh.test,{now - 5}",
            f"--txt-record=old.test,{now - 600}",
            f"--txt-record=ahead.test,{now + 600}",
            "--txt-record=junk.test,not a timestamp",
            f"--txt-record=two.test,{now - 600}",
            f"--txt-record=two.test,{now - 2}",
            "--cname=alias.test,fresh.test",
            "--host-record=noheartbeat.test,10.1.1.1",
            "--local=/test/") as server:
        yield server


def heartbeat_job(server: str, name: str) -> Job:
    spec = DnsCheck.model_validate({"server": server, "names": ["api.test"],
                                    "freshness": {"name": name, "max_age": MAX_AGE}})
    endpoint = split_hostport(server)
    return Job("c1", "dns", endpoint, f"dns {endpoint} {name} heartbeat", spec, name,
               heartbeat=True)


@pytest.mark.parametrize("name", ["fresh.test", "two.test", "alias.test"])
async def test_a_fresh_heartbeat_passes(heartbeats: Dnsmasq, probe: Prober, name: str) -> None:
    """Within max_age; of several records the freshest counts; a CNAME is followed."""
    result = await probe(heartbeat_job(heartbeats.address, name))
    assert result.ok, result
    age = int(result.detail.removeprefix("heartbeat ").removesuffix("s old"))
    assert 0 <= age < 30
    assert probe.permit.calls == 1


@pytest.mark.parametrize(("name", "detail"), [
    ("old.test", "s old, over max_age 60s"),
    ("ahead.test", "s in the future: the cluster's clock and ours differ by more than"),
    ("junk.test", "heartbeat is not a Unix timestamp: 'not a timestamp'"),
])
async def test_a_heartbeat_that_answers_but_is_not_fresh_is_stale(
        heartbeats: Dnsmasq, probe: Prober, name: str, detail: str) -> None:
    result = await probe(heartbeat_job(heartbeats.address, name))
    assert not result.ok
    assert result.failure_class == "stale"
    assert detail in result.detail


async def test_no_heartbeat_record_is_no_answer_and_an_unknown_name_nxdomain(
        heartbeats: Dnsmasq, probe: Prober) -> None:
    """What the server says is reported as such: not every failure is a stale heartbeat."""
    missing = await probe(heartbeat_job(heartbeats.address, "noheartbeat.test"))
    assert missing.failure_class == "no_answer"
    assert missing.detail == "NOERROR but no TXT records: no heartbeat"
    unknown = await probe(heartbeat_job(heartbeats.address, "nothing.test"))
    assert unknown.failure_class == "nxdomain"


async def test_the_heartbeat_query_reaches_the_server(heartbeats: Dnsmasq, probe: Prober) -> None:
    await probe(heartbeat_job(heartbeats.address, "fresh.test"))
    assert "query[TXT] fresh.test from 127.0.0.1" in heartbeats.log()
