"""The status page: one self-contained HTML document rendered on the server from the same
document /v1/status serves, so it is whole from `curl`, with scripts off, and when nothing
but the daemon answers. A small inline script swaps in a fresh `<main>` every few seconds
and says plainly when the daemon stops answering."""

from __future__ import annotations

import base64
import functools
import hashlib
import html
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from failover.api.history import Series
from failover.model import ClusterState

REFRESH_S = 2.0
"""Seconds between two refreshes of the page's data: a state change shows within a tick
or two, and a page left open costs the daemon one render every two seconds at most."""

ANSWER_WITHIN_S = 4.0
"""Seconds the page waits for an answer before it says the daemon is not answering: twice
the refresh, well above a loaded daemon's slowest honest answer."""

DECISIONS_SHOWN = 20

SPARK_HEIGHT = 16
SPARK_STEP_PX = 1

STATES = tuple(str(s) for s in (
    ClusterState.HEALTHY, ClusterState.DEGRADED, ClusterState.RECOVERING, ClusterState.WAITING,
    ClusterState.UNKNOWN, ClusterState.UNHEALTHY, ClusterState.DRAINED))
"""The order the summary counts them in: serving first, then the rest."""

STYLE = """
:root{--fg:#1b1f24;--dim:#5c6670;--bg:#fff;--line:#dde1e5;--bar:#2f6fb5;--target:#111;
--healthy:#1a7f37;--degraded:#9a6700;--recovering:#0969da;--waiting:#8250df;
--unknown:#6e7781;--unhealthy:#cf222e;--drained:#57606a}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--dim:#9aa4ae;--bg:#0d1117;
--line:#30363d;--bar:#4f93de;--target:#e6edf3}}
*{box-sizing:border-box}
body{margin:0;font:13px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);
background:var(--bg)}
header,main>section{padding:8px 16px}
header{display:flex;flex-wrap:wrap;gap:6px 18px;align-items:baseline;
border-bottom:1px solid var(--line)}
h1{font-size:17px;margin:0}h2{font-size:14px;margin:14px 0 6px}
table{border-collapse:collapse}#clusters table{width:100%}
th,td{text-align:left;padding:3px 8px 3px 0;border-bottom:1px solid var(--line);
vertical-align:top}
th{font-weight:600;color:var(--dim);white-space:nowrap}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.dim{color:var(--dim)}
.st{display:inline-block;padding:0 6px;border-radius:9px;color:#fff;font-weight:600;
background:var(--unknown)}
.st.healthy{background:var(--healthy)}.st.degraded{background:var(--degraded)}
.st.recovering{background:var(--recovering)}.st.waiting{background:var(--waiting)}
.st.unhealthy{background:var(--unhealthy)}.st.drained{background:var(--drained)}
.bar{position:relative;width:140px;height:14px;background:var(--line);border-radius:2px}
.bar i{position:absolute;left:0;top:0;bottom:0;background:var(--bar);border-radius:2px}
.bar u{position:absolute;top:-2px;bottom:-2px;width:2px;background:var(--target)}
svg{display:block;overflow:hidden;background:linear-gradient(var(--line),var(--line))
bottom/100% 1px no-repeat}
svg path{fill:none;stroke:var(--bar);stroke-width:1.5;vector-effect:non-scaling-stroke}
td.r{max-width:26em}td.c{max-width:36em}
.ck{display:inline-block;white-space:nowrap;margin-right:8px}
.bad{color:var(--unhealthy);font-weight:600}
.warn{padding:8px 16px;font-weight:600;color:#fff;background:var(--degraded)}
#down{position:sticky;top:0;z-index:1;padding:10px 16px;font-weight:700;color:#fff;
background:var(--unhealthy)}
body.stale main{opacity:.45}
#filter{margin-left:auto}
"""

SCRIPT = """
(() => {
  const main = document.getElementById("main"), down = document.getElementById("down"),
    filter = document.getElementById("filter");
  let since = null;
  function show() {
    const q = filter.value.trim().toLowerCase();
    for (const row of main.querySelectorAll("tr[data-n]"))
      row.hidden = q !== "" && !row.dataset.n.includes(q) && !row.dataset.s.startsWith(q);
  }
  filter.addEventListener("input", show);
  async function refresh() {
    const stop = new AbortController(), timer = setTimeout(() => stop.abort(), WAIT_MS);
    try {
      const answer = await fetch("?part=main", {signal: stop.signal, cache: "no-store"});
      if (!answer.ok) throw new Error("HTTP " + answer.status);
      main.innerHTML = await answer.text();
      show();
      since = null;
      down.hidden = true;
      document.body.classList.remove("stale");
    } catch (e) {
      since = since || new Date();
      const why = e.name === "AbortError" ? "no answer within WAIT_S" : e.message;
      down.textContent = "The daemon is not answering (since " +
        since.toISOString().slice(11, 19) + " UTC: " + why + "). What is shown below is " +
        "from " + main.firstElementChild.dataset.at + " and may be wrong.";
      down.hidden = false;
      document.body.classList.add("stale");
    } finally {
      clearTimeout(timer);
      setTimeout(refresh, EVERY_MS);
    }
  }
  setTimeout(refresh, EVERY_MS);
})();
""".replace("WAIT_MS", str(int(ANSWER_WITHIN_S * 1000))).replace(
    "WAIT_S", f"{ANSWER_WITHIN_S:g} s").replace("EVERY_MS", str(int(REFRESH_S * 1000)))

SCRIPT_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{SCRIPT_HASH}'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
"""Only the page's own script runs, and it reaches only this listener: a reason or a name
that slipped past escaping still could not run or send anything."""

escape = functools.lru_cache(maxsize=16384)(html.escape)
"""Names, check labels and most reasons are the same from one render to the next: at a
thousand clusters, escaping them afresh was a fifth of a render."""


def page(title: str, main_html: str) -> str:
    """The whole page: head, style, the header that refreshes never touch, and `main`."""
    return "".join((
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        "<title>failover: ", title, "</title>"
        f"<noscript><meta http-equiv=refresh content={int(REFRESH_S * 5)}></noscript>"
        "<style>", STYLE, "</style></head><body>"
        "<div id=down role=alert hidden></div>"
        "<header><h1>failover</h1><span class=dim>status, read-only; admin actions are on "
        "the admin listener</span>"
        "<input id=filter type=search placeholder='filter: name or state' "
        "aria-label='filter clusters'></header>"
        "<main id=main>", main_html, "</main>"
        "<script>", SCRIPT, "</script></body></html>"))


def main(document: dict[str, Any], decisions: list[dict[str, Any]],
         series: Mapping[str, Series | None], wall: float, sparks: Sparklines) -> str:
    """What a refresh replaces: everything that changes. ``series``: each cluster's share
    history, read on the loop, as the document was, so a render may run on a thread."""
    sparks.start()
    clusters = document["clusters"]
    at = datetime.fromtimestamp(wall, UTC).strftime("%H:%M:%S UTC")
    out = [f"<section id=plan data-at='{at}'>", _plan(document, clusters, at), "</section>"]
    if document.get("role", "standalone") != "standalone":
        out += ["<section id=coordination>", _coordination(document), "</section>"]
    out += ["<section id=recoveries>", _recoveries(document, clusters), "</section>",
            "<section id=clusters>", _clusters(clusters, series, sparks), "</section>",
            "<section id=decisions>", _decisions(decisions), "</section>",
            "<section id=actuators>", _actuators(document), "</section>"]
    return "".join(out)


def title(document: dict[str, Any]) -> str:
    states = [c["state"] for c in document["clusters"]]
    passing = sum(ClusterState(s).passing for s in states)
    return f"{passing}/{len(states)} passing" + (" (frozen)" if document["frozen"]
                                                          else "")


def _plan(document: dict[str, Any], clusters: list[dict[str, Any]], at: str) -> str:
    counts: dict[str, int] = {}
    for c in clusters:
        counts[c["state"]] = counts.get(c["state"], 0) + 1
    summary = " ".join(f"<span class='st {s}'>{counts[s]} {s}</span>"
                       for s in STATES if s in counts) or "<span class=dim>no clusters</span>"
    out = [f"<p>plan <b>v{document['version']}</b> · {len(clusters)} clusters · {summary} · "
           f"<span class=dim>as of {at}</span></p>"]
    if document["frozen"]:
        out.append("<div class=warn>Frozen: the last good weights stay in force "
                   f"({escape(str(document['frozen_reason']))}).</div>")
    if document.get("shed"):
        out.append(f"<div class=warn>{_pct(document['shed'])} of demand is shed: "
                   "no cluster has room for it.</div>")
    liveness = document.get("liveness") or {}
    if liveness.get("stalled"):
        out.append("<div class=warn>Stalled loops: "
                   f"{escape(', '.join(liveness['stalled']))}.</div>")
    if liveness.get("state_save"):
        out.append(f"<div class=warn>State not saved: {escape(liveness['state_save'])}</div>")
    return "".join(out)


def _coordination(document: dict[str, Any]) -> str:
    leader = document.get("leader")
    etcd = document.get("etcd") or {}
    out = [f"<h2>Coordination</h2><p>role <b>{escape(document['role'])}</b> · leader "
           + ("<span class=dim>none</span>" if leader is None else
              f"<b>{escape(leader['vantage'])}</b> since {escape(leader['since'])}")
           + " · etcd " + ("ok" if etcd.get("ok") else
                           f"<b class=bad>{escape(str(etcd.get('error')))}</b>") + "</p>"]
    vantages = document.get("vantages") or []
    if vantages:
        out.append("<table><tr><th>vantage</th><th>reports</th><th>age</th><th>judged</th></tr>")
        for v in vantages:
            judged = "excluded: " + escape(v["reason"] or "") if v["excluded"] else "counted"
            out.append(f"<tr><td>{escape(v['name'])}</td>"
                       f"<td>{'fresh' if v['fresh'] else '<b>stale</b>'}</td>"
                       f"<td class=n>{v['age_s']:.1f} s</td><td>{judged}</td></tr>")
        out.append("</table>")
    return "".join(out)


def _recoveries(document: dict[str, Any], clusters: list[dict[str, Any]]) -> str:
    recoveries = document["recoveries"]
    slots = recoveries["slots"]
    active, queued = recoveries["active"], recoveries["queued"]
    head = (f"<h2>Recoveries <span class=dim>{len(active)} active, {len(queued)} queued"
            + ("" if slots is None else f", up to {slots} at once")
            + (f": {escape(recoveries['slots_reason'])}" if recoveries["slots_reason"] else "")
            + "</span></h2>")
    if not active and not queued:
        return head + "<p class=dim>none</p>"
    by_name = {c["name"]: c for c in clusters if c["name"] in active}
    out = [head, "<table><tr><th>cluster</th><th>progress</th><th></th><th>ramp</th>"
           "<th>why</th></tr>"]
    for name in active:
        c = by_name.get(name)
        if c is None:
            continue
        target = c["target_share"]
        done = 1.0 if target <= 0 else min(1.0, c["share"] / target)
        ramp = c["ramp"] or {}
        out.append(f"<tr><td>{escape(name)}</td><td>{_bar(done, None)}</td>"
                   f"<td class=n>{done:.0%} of {_pct(target)}</td>"
                   f"<td>{escape(ramp.get('mode', ''))} {escape(ramp.get('action') or '')}</td>"
                   f"<td>{escape(ramp.get('reason') or c['reason'])}</td></tr>")
    for position, name in enumerate(queued, 1):
        out.append(f"<tr><td>{escape(name)}</td><td colspan=3 class=dim>queued, "
                   f"#{position}</td><td>waiting for a recovery slot</td></tr>")
    out.append("</table>")
    return "".join(out)


def _clusters(clusters: list[dict[str, Any]], series: Mapping[str, Series | None],
              sparks: Sparklines) -> str:
    scale = max((max(c["share"], c["target_share"]) for c in clusters), default=0.0)
    vantages = any("vantages" in c for c in clusters)
    out = ["<h2>Clusters <span class=dim>bars: share, and the mark its target share, "
           f"scaled to {_pct(scale)}; history: the last 15 minutes</span></h2>"
           "<table><tr><th>#</th><th>cluster</th><th>state</th><th>share</th><th></th>"
           "<th>history</th><th>score</th><th>reason</th><th>checks</th>",
           "<th>vantages</th>" if vantages else "", "</tr>"]
    row = _row_renderer(scale, series, sparks, vantages)
    out.extend(row(c) for c in clusters)
    out.append("</table>")
    return "".join(out)


def _row_renderer(scale: float, series: Mapping[str, Series | None], sparks: Sparklines,
                  vantages: bool) -> Callable[[dict[str, Any]], str]:
    def row(c: dict[str, Any]) -> str:
        name = escape(c["name"])
        state = c["state"]
        share, target = c["share"], c["target_share"]
        return "".join((
            f"<tr data-n='{name.lower()}' data-s={state}><td class=n>{c['rank']}</td>"
            f"<td>{name}</td><td><span class='st {state}'>{state}</span></td>"
            f"<td>{_bar(share / scale if scale else 0.0, target / scale if scale else None)}"
            f"</td><td class=n>{_pct(share)} <span class=dim>→ {_pct(target)}</span></td>"
            f"<td>{sparks.svg(c['name'], series.get(c['name']), target)}</td>"
            f"<td class=n>{c['score']:.3f}</td><td class=r>{escape(c['reason'])}</td>"
            f"<td class=c>{_checks(c['checks'])}</td>",
            _vantage_cell(c.get("vantages") or {}) if vantages else "", "</tr>"))
    return row


def _bar(fill: float, mark: float | None) -> str:
    mark_html = "" if mark is None else f"<u style='left:{min(mark, 1.0) * 100:.1f}%'></u>"
    return f"<div class=bar><i style='width:{min(fill, 1.0) * 100:.1f}%'></i>{mark_html}</div>"


def _checks(checks: Iterable[dict[str, Any]]) -> str:
    out = []
    for check in checks:
        if check["ok"] is None:
            result = "no result yet"
        elif check["ok"]:
            result = "ok" if check["latency_ms"] is None else f"{check['latency_ms']:g} ms"
        else:
            result = escape(str(check["error"] or "failed"))
        # verdict and label are the daemon's additions to CONTRACT's check fields.
        verdict = check.get("verdict") or ("passing" if check["ok"] else "failing")
        label = check.get("label") or f"{check['kind']} {check['target']}"
        out.append(f"<span class='ck{'' if verdict == 'passing' else ' bad'}' "
                   f"title='{escape(label)}: {escape(verdict)}, "
                   f"{check['consecutive_failures']} failed in a row'>"
                   f"{'✓' if check['ok'] else '✗'} {escape(check['kind'])} {result}</span>")
    return "".join(out)


def _vantage_cell(verdicts: dict[str, str]) -> str:
    passing = sum(v == "passing" for v in verdicts.values())
    detail = escape(", ".join(f"{k}: {v}" for k, v in verdicts.items()))
    return f"<td title='{detail}'>{passing}/{len(verdicts)} passing</td>"


class Sparklines:
    """Each cluster's history line, drawn once per change of its points: x is the absolute
    step and the window moves by the SVG's viewBox, so a path stays valid as time passes
    and a steady fleet redraws nothing."""

    def __init__(self) -> None:
        self._drawn: dict[str, tuple[tuple[tuple[int, float], ...], float, str]] = {}
        self._used: dict[str, tuple[tuple[tuple[int, float], ...], float, str]] = {}

    def start(self) -> None:
        """Called before each render: lines of clusters no longer shown are dropped."""
        self._drawn, self._used = self._used, {}

    def svg(self, name: str, series: Series | None, target: float) -> str:
        if series is None or not series.points:
            return ""
        points = series.points
        drawn = self._drawn.get(name)
        if drawn is None or drawn[0] is not points or drawn[1] != target:
            top = max(target, *(share for _, share in points))
            drawn = (points, target, _path(points, top))
        self._used[name] = drawn
        width = (series.last - series.first + 1) * SPARK_STEP_PX
        return (f"<svg width={width} height={SPARK_HEIGHT} viewBox='{series.first} 0 "
                f"{series.last - series.first + 1} {SPARK_HEIGHT}' preserveAspectRatio=none "
                f"role=img aria-label='share over the last 15 minutes'>{drawn[2]}</svg>")


def _path(points: tuple[tuple[int, float], ...], top: float) -> str:
    """A step line of the share, from 0 at the bottom to ``top``, run on to the right far
    past any window: the viewBox shows the part that is in it."""
    span = SPARK_HEIGHT - 2

    def y(share: float) -> int:
        return SPARK_HEIGHT - 1 - (round(share / top * span) if top > 0 else 0)

    start, first_share = points[0]
    last_y = y(first_share)
    path = [f"M{start} {last_y}"]
    for step, share in points[1:]:
        new_y = y(share)
        if new_y != last_y:
            path.append(f"H{step}V{new_y}")
            last_y = new_y
    path.append("h1e6")
    return f"<path d='{''.join(path)}'/>"


def _decisions(decisions: list[dict[str, Any]]) -> str:
    shown = decisions[:DECISIONS_SHOWN]
    out = [f"<h2>Last decisions <span class=dim>newest first, {len(shown)} shown; all in "
           "<a href=v1/decisions>/v1/decisions</a></span></h2>"]
    if not shown:
        return out[0] + "<p class=dim>none yet</p>"
    out.append("<table><tr><th>at</th><th>plan</th><th>cluster</th><th>action</th>"
               "<th>share</th><th>why</th></tr>")
    for d in shown:
        at = escape(d["at"])
        out.append(f"<tr><td class=n title='{at}'>{at[11:23]}</td>"
                   f"<td class=n>v{d['version']}</td>"
                   f"<td>{escape(d['cluster'])}</td><td>{escape(d['action'])}</td>"
                   f"<td class=n>{_pct(d['from_share'])} → {_pct(d['to_share'])}</td>"
                   f"<td class=r>{escape(d['reason'])}</td></tr>")
    out.append("</table>")
    return "".join(out)


def _actuators(document: dict[str, Any]) -> str:
    actuators = document.get("actuators") or []
    if not actuators:
        return ""
    out = ["<h2>Actuators</h2><table><tr><th>actuator</th><th>applied</th><th>last error</th>"
           "</tr>"]
    for a in actuators:
        applied = a["applied_version"]
        behind = applied != a["planned_version"]
        out.append(f"<tr><td>{escape(a['name'])}</td><td class=n>"
                   + ("<span class=dim>nothing yet</span>" if applied is None
                      else f"{'<b>' if behind else ''}v{applied}{'</b>' if behind else ''}")
                   + f"</td><td>{escape(a['last_error'] or '')}</td></tr>")
    out.append("</table>")
    return "".join(out)


def _pct(fraction: float) -> str:
    percent = fraction * 100
    return f"{percent:.1f}%" if percent >= 1 or percent == 0 else f"{percent:.2g}%"
