"""``failover lab``: run simulated clusters, or add clusters to a running lab and change
their faults and warmth."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import urllib.error
import urllib.request
from typing import Any

from failover.lab.faults import DEFAULT_DELAY, DNS_FAULTS, HTTP_FAULTS
from failover.lab.lab import WARM_SECONDS, Lab, LabOptions, LabOptionsError

OK, USER_ERROR, UNREACHABLE = 0, 1, 3
DEFAULT_CONTROL = "127.0.0.1:9480"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lab = sub.add_parser(
        "lab", help="simulated clusters on loopback with fault injection",
        description="Without a subcommand: run the lab in the foreground until Ctrl-C. "
                    "Cluster N (from 1) is named lab-N, answers DNS for *.cluster.local "
                    "with 10.0.N.1 (and TXT for heartbeat.cluster.local with the Unix time, "
                    "which the 'stale' DNS fault freezes) on the DNS base port + N - 1, and "
                    "serves HTTP (/healthz and any path) on the HTTP base port + N - 1.")
    lab.add_argument("--clusters", type=int, default=3, help="how many (default 3)")
    lab.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    lab.add_argument("--dns-base-port", type=int, default=5301, help="0: free ports")
    lab.add_argument("--http-base-port", type=int, default=8101, help="0: free ports")
    lab.add_argument("--capacity", type=float, default=None, metavar="RPS",
                     help="per-cluster requests/s of a warm cluster before 503s, health "
                          "checks included (default unlimited)")
    lab.add_argument("--cold-factor", type=float, default=LabOptions.cold_factor,
                     metavar="F", help="with --capacity: fraction of it a cold cluster "
                                       f"serves (default {LabOptions.cold_factor:g})")
    lab.add_argument("--warm-requests", type=float, default=None, metavar="N",
                     help="with --capacity: served requests that take a cold cluster ~63%% "
                          f"of the way back (default {WARM_SECONDS:g} x capacity)")
    lab.add_argument("--cold-after", type=float, default=LabOptions.cold_after,
                     metavar="S", help="with --capacity: seconds without serving traffic "
                                       "(health checks do not count) before a cluster is "
                                       f"cold (default {LabOptions.cold_after:g})")
    lab.add_argument("--reject-cost", type=float, default=LabOptions.reject_cost,
                     metavar="C", help="with --capacity: work a 503 costs, as a fraction of "
                                       "serving a request, taken from the next second's "
                                       f"capacity (default {LabOptions.reject_cost:g})")
    lab.add_argument("--control", default=DEFAULT_CONTROL,
                     help=f"control API address, or 'none' (default {DEFAULT_CONTROL})")
    lab.set_defaults(func=_run)
    actions = lab.add_subparsers(dest="lab_command", metavar="ACTION")

    fault = actions.add_parser("fault", help="inject a fault into a running lab's cluster")
    fault.add_argument("name", help="cluster name, e.g. lab-1")
    fault.add_argument("--dns", choices=DNS_FAULTS)
    fault.add_argument("--http", choices=HTTP_FAULTS)
    fault.add_argument("--delay", type=float,
                       help=f"seconds for the 'slow' faults (default {DEFAULT_DELAY:g})")
    fault.set_defaults(func=_fault)

    reset = actions.add_parser("reset", help="lift every fault of a cluster")
    reset.add_argument("name")
    reset.set_defaults(func=_reset)

    cold = actions.add_parser(
        "cold", help="make a cluster cold now (a lab run with --capacity): its capacity "
                     "drops to the cold factor and grows back with the traffic it serves")
    cold.add_argument("name", help="cluster name, e.g. lab-1")
    cold.set_defaults(func=_cold)

    add = actions.add_parser(
        "add", help="start one more cluster in a running lab, numbered after the highest, "
                    "and print it as JSON")
    add.add_argument("name", nargs="?",
                     help="lower-case letters, digits and '-' (default lab-N)")
    # JSON always: what calls it (a provisioning hook's receiver) reads the addresses.
    add.set_defaults(func=_add, json=True)

    show = actions.add_parser("show", help="list a running lab's clusters, faults, counters "
                                           "and load")
    show.add_argument("--json", action="store_true", help="print the raw document")
    show.set_defaults(func=_show)
    for action in (fault, reset, cold, add, show):
        # SUPPRESS: `failover lab --control X show` keeps X instead of this default.
        action.add_argument("--control", default=argparse.SUPPRESS,
                            help=f"the lab's control API (default {DEFAULT_CONTROL})")


FLAGS = {"clusters": "--clusters", "capacity_rps": "--capacity", "cold_factor": "--cold-factor",
         "warm_requests": "--warm-requests", "cold_after": "--cold-after",
         "reject_cost": "--reject-cost", "control": "--control"}
"""The flag each LabOptions field comes from, to name it in errors."""


def _run(args: argparse.Namespace) -> int:
    try:
        options = LabOptions(
            clusters=args.clusters, host=args.host, dns_base_port=args.dns_base_port,
            http_base_port=args.http_base_port, capacity_rps=args.capacity,
            cold_factor=args.cold_factor, warm_requests=args.warm_requests,
            cold_after=args.cold_after, reject_cost=args.reject_cost,
            control=None if args.control == "none" else args.control)
    except LabOptionsError as exc:
        print(f"failover lab: {FLAGS.get(exc.option, exc.option)} {exc.problem}",
              file=sys.stderr)
        return USER_ERROR
    try:
        asyncio.run(serve(options))
    except OSError as exc:
        print(f"failover lab: cannot start: {exc}", file=sys.stderr)
        return USER_ERROR
    return OK


async def serve(options: LabOptions) -> None:
    """Run the lab and its control API until SIGINT or SIGTERM."""
    from failover.lab.control import control_server  # noqa: PLC0415 - keep the clients light

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with Lab(options) as lab, contextlib.AsyncExitStack() as stack:
        control = None
        if options.control is not None:
            control = await stack.enter_async_context(control_server(lab, options.control))
        for cluster in lab.clusters:
            print(f"{cluster.name}: dns {cluster.dns_address} (answers {cluster.answer}), "
                  f"http {cluster.http_url}", flush=True)
        if control is not None:
            print(f"control API: http://{control}/v1/clusters", flush=True)
        await stop.wait()


def _call(args: argparse.Namespace, path: str, body: dict[str, Any] | None = None) -> int:
    url = f"http://{args.control}{path}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - lab's URL
            doc = json.load(response)
    except urllib.error.HTTPError as exc:
        print(f"failover lab: {_error_message(exc)}", file=sys.stderr)
        return USER_ERROR
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"failover lab: no lab control API at {url}: {exc}", file=sys.stderr)
        return UNREACHABLE
    if getattr(args, "json", False):
        print(json.dumps(doc, indent=2))
        return OK
    for cluster in doc.get("clusters", [doc]):
        faults, counters = cluster["faults"], cluster["counters"]
        print(f"{cluster['name']}: dns={faults['dns']} http={faults['http']} "
              f"delay={faults['delay']:g}s  dns {cluster['dns']}  http {cluster['http']}  "
              f"received dns {counters['dns_udp']}+{counters['dns_tcp']}tcp "
              f"http {counters['http']} (503 {counters['over_capacity']})  {_load(cluster)}")
    return OK


def _load(cluster: dict[str, Any]) -> str:
    """Capacity and the last second's load, in one short phrase."""
    load = cluster.get("load") or {}
    text = f"last second: {load.get('offered_rps', 0)} in, {load.get('served_rps', 0)} ok"
    if cluster.get("capacity_rps") is None:
        return text
    utilization = load.get("utilization")
    return (f"capacity {cluster['effective_capacity_rps']:.1f}/{cluster['capacity_rps']:g} rps "
            f"(warmth {cluster['warmth']:.2f}); {text}, {load.get('rejected_rps', 0)} 503"
            + ("" if utilization is None else f", utilization {utilization:.2f}"))


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.load(exc)["error"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {exc.code} {exc.reason}"


def _fault(args: argparse.Namespace) -> int:
    body = {key: getattr(args, key) for key in ("dns", "http", "delay")
            if getattr(args, key) is not None}
    if not body:
        print("failover lab fault: give --dns, --http or --delay", file=sys.stderr)
        return 2
    return _call(args, f"/v1/clusters/{args.name}/fault", body)


def _reset(args: argparse.Namespace) -> int:
    return _call(args, f"/v1/clusters/{args.name}/reset", {})


def _cold(args: argparse.Namespace) -> int:
    return _call(args, f"/v1/clusters/{args.name}/cold", {})


def _add(args: argparse.Namespace) -> int:
    return _call(args, "/v1/clusters", {} if args.name is None else {"name": args.name})


def _show(args: argparse.Namespace) -> int:
    return _call(args, "/v1/clusters")
