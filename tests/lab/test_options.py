"""LabOptions: warm-up defaults follow the capacity, and values out of range are refused
naming the option."""

from __future__ import annotations

import pytest

from failover.lab import LabOptions
from failover.lab.lab import LabOptionsError
from failover.lab.warmth import WarmthParams


def test_warm_up_defaults() -> None:
    """warm_requests defaults to 30 s of full load; without a capacity there is no warm-up."""
    assert LabOptions(capacity_rps=20).warmth() == WarmthParams(
        cold_factor=0.3, warm_requests=600, cold_after=30)
    assert LabOptions(capacity_rps=20, warm_requests=50, cold_factor=1).warmth() == \
        WarmthParams(cold_factor=1, warm_requests=50, cold_after=30)
    assert LabOptions().warmth() is None


@pytest.mark.parametrize(("field", "value", "message"), [
    ("cold_factor", 0.0, "cold_factor must be above 0 and at most 1, got 0"),
    ("cold_factor", 1.5, "cold_factor must be above 0 and at most 1, got 1.5"),
    ("cold_factor", float("nan"), "cold_factor must be above 0 and at most 1"),
    ("warm_requests", 0.0, "warm_requests must be a finite number above 0, got 0"),
    ("warm_requests", float("inf"), "warm_requests must be a finite number above 0"),
    ("cold_after", -1.0, "cold_after must be a finite number above 0, got -1"),
    ("reject_cost", 1.0, "reject_cost must be at least 0 and below 1, got 1"),
    ("reject_cost", -0.1, "reject_cost must be at least 0 and below 1, got -0.1"),
    ("capacity_rps", 0.0, "capacity_rps must be a finite number above 0, got 0"),
    ("clusters", 0, "clusters must be at least 1, got 0"),
    ("control", "nowhere", "control expected host:port, got 'nowhere'"),
])
def test_out_of_range_is_refused(field: str, value: object, message: str) -> None:
    """Each bad value is refused with the field's name and what is wrong."""
    with pytest.raises(LabOptionsError, match="^" + message) as info:
        LabOptions(**{field: value})  # type: ignore[arg-type]
    assert info.value.option == field
