"""The Prometheus HTTP API's instant-query replies, read strictly: what a value is, when it
was measured, and a clear reason for anything else."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from failover.signals.metrics import Result

MAX_REPLY_BYTES = 8 * 1024 * 1024
"""A larger reply is refused as ``bad_reply``: a fleet-wide query gives one short series per
cluster, so megabytes mean a query that forgot to aggregate."""
QUERY_PATH = "/api/v1/query"


class QueryFailed(Exception):
    """A query gave no usable reply; ``result`` classifies it for the metrics."""

    def __init__(self, result: Result, detail: str) -> None:
        super().__init__(detail)
        self.result: Result = result
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Point:
    """One value of a reply: a vector's series, or the scalar."""

    labels: Mapping[str, str]
    timestamp: float
    """Unix seconds: the query's evaluation time, as Prometheus reports it."""
    value: float | None
    """None when Prometheus gave no number (NaN, ±Inf) or one we cannot read."""
    note: str = ""
    """Why ``value`` is None."""


@dataclass(frozen=True, slots=True)
class Reply:
    result_type: Literal["vector", "scalar"]
    points: tuple[Point, ...]


def _snippet(body: bytes, limit: int = 200) -> str:
    text = " ".join(body[:limit].decode("utf-8", errors="replace").split())
    return text + ("..." if len(body) > limit else "") if text else "(empty body)"


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _api_error(doc: Any) -> str | None:
    """``errorType: error`` of an API error document, None if ``doc`` is not one."""
    if isinstance(doc, dict) and doc.get("status") == "error":
        return f"{doc.get('errorType', 'unknown')}: {doc.get('error', '(no message)')}"
    return None


def _point(labels: Mapping[str, str], pair: Any, where: str) -> Point:
    if not (isinstance(pair, list) and len(pair) == 2):
        raise QueryFailed("bad_reply",
                          f"{where}: expected [timestamp, \"value\"], got {pair!r:.80}")
    stamp, text = pair
    if isinstance(stamp, bool) or not isinstance(stamp, int | float) or not math.isfinite(stamp):
        raise QueryFailed("bad_reply", f"{where}: timestamp {stamp!r:.40} is not a number")
    if not isinstance(text, str):
        return Point(labels, float(stamp), None, f"value {text!r:.40} is not a string")
    try:
        value = float(text)
    except ValueError:
        return Point(labels, float(stamp), None, f"value {text!r:.40} is not a number")
    if not math.isfinite(value):
        return Point(labels, float(stamp), None, f"value {text}")
    return Point(labels, float(stamp), value)


def parse_reply(status: int, body: bytes) -> Reply:
    """The values of an instant query's reply; `QueryFailed` when there are none to read.

    An HTTP error status or an API ``status: error`` is ``error`` (with Prometheus's
    ``errorType`` and ``error`` when it gave them); anything that is not the API's JSON
    shape for an instant vector or scalar is ``bad_reply``.
    """
    try:
        doc: Any = json.loads(body)
        readable = True
    except ValueError:  # not JSON, or not UTF-8
        doc, readable = None, False
    error = _api_error(doc)
    if not 200 <= status < 300:
        raise QueryFailed("error", f"HTTP {status}: {error or _snippet(body)}")
    if not readable:
        raise QueryFailed("bad_reply", f"reply is not JSON: {_snippet(body)}")
    if error is not None:
        raise QueryFailed("error", error)
    if not isinstance(doc, dict) or doc.get("status") != "success":
        raise QueryFailed("bad_reply",
                          f"reply is not a Prometheus API document: {_snippet(body)}")
    data = doc.get("data")
    if not isinstance(data, dict):
        raise QueryFailed("bad_reply", "reply has no 'data' object")
    result_type, result = data.get("resultType"), data.get("result")
    if result_type == "scalar":
        return Reply("scalar", (_point({}, result, "scalar"),))
    if result_type != "vector":
        raise QueryFailed("bad_reply", f"resultType {result_type!r}: an instant query for a "
                                       "signal must give a vector or a scalar")
    if not isinstance(result, list):
        raise QueryFailed("bad_reply", "vector reply has no 'result' list")
    points = []
    for index, series in enumerate(result):
        where = f"series {index}"
        if not isinstance(series, dict):
            raise QueryFailed("bad_reply", f"{where} is not an object")
        labels = series.get("metric", {})
        if not (isinstance(labels, dict)
                and all(isinstance(v, str) for v in labels.values())):
            raise QueryFailed("bad_reply", f"{where}: 'metric' is not a map of labels")
        points.append(_point(labels, series.get("value"), where))
    return Reply("vector", tuple(points))


async def read_reply(response: aiohttp.ClientResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise QueryFailed("bad_reply", f"reply larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
