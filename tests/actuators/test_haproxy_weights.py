"""Shares become HAProxy weights: the largest gets 256, the rest in proportion, 0 drains."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from failover.actuators.base import Applied, PermanentActuatorError
from failover.actuators.haproxy import (
    WEIGHT_MAX,
    HaproxyActuator,
    Want,
    differences,
    server_weights,
)
from failover.actuators.haproxy_api import ServerState
from tests.actuators.test_file import make_plan


def test_largest_share_gets_256_and_the_others_in_proportion() -> None:
    """0.5/0.3/0.2 -> 256/154/102 (153.6 and 102.4 rounded to the nearest)."""
    assert server_weights({"a": 0.5, "b": 0.3, "c": 0.2}) == {"a": 256, "b": 154, "c": 102}


def test_half_rounds_up() -> None:
    """A weight exactly half-way rounds up: 256 x 0.003 / 0.512 = 1.5 -> 2."""
    assert server_weights({"a": 512.0 / 1000, "b": 3.0 / 1000}) == {"a": 256, "b": 2}


def test_zero_share_is_weight_zero() -> None:
    """Share 0 gives weight 0, which the actuator turns into the drain state."""
    assert server_weights({"a": 0.0, "b": 0.6, "c": 0.4}) == {"a": 0, "b": 256, "c": 171}


def test_tiny_positive_share_is_never_rounded_to_zero() -> None:
    """A ramp's first slice (0.001 beside 0.999) still gets weight 1, not 0."""
    assert server_weights({"a": 0.999, "b": 0.001}) == {"a": 256, "b": 1}


def test_float_noise_counts_as_zero() -> None:
    """Shares below the 6 decimals weights.json shows are 0 there, and 0 here too."""
    assert server_weights({"a": 1.0, "b": 1e-9}) == {"a": 256, "b": 0}


def test_all_zero_is_all_zero() -> None:
    """No share anywhere: every weight is 0 (and the actuator then leaves HAProxy alone)."""
    assert server_weights({"a": 0.0, "b": 0.0}) == {"a": 0, "b": 0}


def test_only_ratios_matter() -> None:
    """Shares summing below 1 (shedding) give the same weights as the same ratios summing to 1."""
    assert server_weights({"a": 0.25, "b": 0.15}) == server_weights({"a": 0.625, "b": 0.375})


@given(st.dictionaries(st.text(min_size=1, max_size=3),
                       st.floats(min_value=0, max_value=1), min_size=1, max_size=8))
def test_weights_keep_the_ratios(shares: dict[str, float]) -> None:
    """In range, 0 exactly for share 0, 256 for the largest, each within half a step of exact."""
    weights = server_weights(shares)
    rounded = {k: round(v, 6) for k, v in shares.items()}
    largest = max(rounded.values())
    for name, share in rounded.items():
        assert 0 <= weights[name] <= WEIGHT_MAX
        assert (weights[name] == 0) == (share == 0)
        if share > 0:
            exact = WEIGHT_MAX * share / largest
            assert abs(weights[name] - exact) <= 0.5 or (weights[name] == 1 and exact < 1)
    if largest > 0:
        assert max(weights.values()) == WEIGHT_MAX


def test_wants_cover_every_mapped_server() -> None:
    """A mapped cluster missing from the plan is drained; unmapped clusters are ignored."""
    actuator = HaproxyActuator(backend="app", servers={"a": "s-a", "b": "s-b", "gone": "s-g"},
                               socket=None, address="127.0.0.1:1")
    wants = actuator.wants(make_plan(1, {"a": 0.6, "b": 0.2, "elsewhere": 0.2}))
    assert wants == [Want("a", "s-a", 256), Want("b", "s-b", 85), Want("gone", "s-g", 0)]
    assert [w.state for w in wants] == ["ready", "ready", "drain"]


def state(name: str, weight: int, admin: int = 0) -> ServerState:
    return ServerState("app", name, 2, admin, weight, 1)


def test_differences_name_server_field_and_values() -> None:
    """Each difference says server, what it is and what it should be."""
    wants = [Want("a", "s1", 256), Want("b", "s2", 0), Want("c", "s3", 10), Want("d", "s4", 5)]
    servers = {"s1": state("s1", 12, admin=0x08), "s2": state("s2", 0),
               "s3": state("s3", 10, admin=0x01)}
    assert differences("app", wants, servers) == [
        "server app/s1 state drain, want ready",
        "server app/s1 weight 12, want 256",
        "server app/s2 state ready, want drain",
        "server app/s3 state maint, want ready",
        "server app/s4 missing from the backend",
    ]


def test_states_haproxy_sets_itself_are_not_drift() -> None:
    """Maintenance from the config (0x04) or DNS (0x20) is not something re-applying fixes."""
    servers = {"s1": state("s1", 256, admin=0x04 | 0x20)}
    assert differences("app", [Want("a", "s1", 256)], servers) == []


@pytest.mark.parametrize(("backend", "servers", "why"), [
    ("app;x", {"a": "s1"}, "'app;x' is not a valid HAProxy name"),
    ("app", {"a": "s 1"}, "'s 1' is not a valid HAProxy name"),
    ("app", {"a": "s1", "b": "s1"}, "server 's1' is mapped from both 'a' and 'b'"),
])
async def test_impossible_mappings_fail_every_apply(backend: str, servers: dict[str, str],
                                                    why: str) -> None:
    """Names HAProxy cannot have, or one server for two clusters, are permanent errors."""
    actuator = HaproxyActuator(backend=backend, servers=servers, address="127.0.0.1:1")
    with pytest.raises(PermanentActuatorError, match=why):
        await actuator.apply(Applied(make_plan(1, {"a": 1.0}), 0.0))
