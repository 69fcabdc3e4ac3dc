"""One live stack (lab, daemon, Prometheus) for every test that needs real scrapes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.deploy.live import Stack, running_stack


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Shared: starting Prometheus and waiting for scrapes is most of these tests' time.
    # Package scope: stopped after tests/deploy, so it does not load the suites after it.
    with running_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running
