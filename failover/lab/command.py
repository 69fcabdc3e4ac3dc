"""``failover lab``: run simulated clusters, or change a running lab's faults."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import urllib.error
import urllib.request
from typing import Any

from failover.config.addresses import split_hostport
from failover.lab.faults import DEFAULT_DELAY, DNS_FAULTS, HTTP_FAULTS
from failover.lab.lab import Lab, LabOptions

OK, USER_ERROR, UNREACHABLE = 0, 1, 3
DEFAULT_CONTROL = "127.0.0.1:9480"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lab = sub.add_parser(
        "lab", help="simulated clusters on loopback with fault injection",
        description="Without a subcommand: run the lab in the foreground until Ctrl-C. "
                    "Cluster N (from 1) is named lab-N, answers DNS for *.cluster.local "
                    "with 10.0.N.1 on the DNS base port + N - 1, and serves HTTP "
                    "(/healthz and any path) on the HTTP base port + N - 1.")
    lab.add_argument("--clusters", type=int, default=3, help="how many (default 3)")
    lab.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    lab.add_argument("--dns-base-port", type=int, default=5301, help="0: free ports")
    lab.add_argument("--http-base-port", type=int, default=8101, help="0: free ports")
    lab.add_argument("--capacity", type=float, default=None, metavar="RPS",
                     help="per-cluster requests/s before 503s (default unlimited)")
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

    show = actions.add_parser("show", help="list a running lab's clusters, faults and counters")
    show.add_argument("--json", action="store_true", help="print the raw document")
    show.set_defaults(func=_show)
    for action in (fault, reset, show):
        # SUPPRESS: `failover lab --control X show` keeps X instead of this default.
        action.add_argument("--control", default=argparse.SUPPRESS,
                            help="the lab's control API (default {DEFAULT_CONTROL})")


def _run(args: argparse.Namespace) -> int:
    if args.clusters < 1:
        print("failover lab: --clusters must be at least 1", file=sys.stderr)
        return USER_ERROR
    control = None if args.control == "none" else args.control
    options = LabOptions(clusters=args.clusters, host=args.host,
                         dns_base_port=args.dns_base_port, http_base_port=args.http_base_port,
                         capacity_rps=args.capacity, control=control)
    try:
        asyncio.run(serve(options))
    except OSError as exc:
        print(f"failover lab: cannot start: {exc}", file=sys.stderr)
        return USER_ERROR
    return OK


async def serve(options: LabOptions) -> None:
    """Run the lab and its control API until SIGINT or SIGTERM."""
    from aiohttp import web  # noqa: PLC0415 - keep the client subcommands light

    from failover.lab.control import control_app  # noqa: PLC0415 - same

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with Lab(options) as lab:
        runner = web.AppRunner(control_app(lab), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            if options.control is not None:
                host, port = split_hostport(options.control, listen=True)
                await web.TCPSite(runner, host, port, reuse_address=True).start()
            for cluster in lab.clusters:
                print(f"{cluster.name}: dns {cluster.dns_address} (answers {cluster.answer}), "
                      f"http {cluster.http_url}", flush=True)
            if options.control is not None:
                print(f"control API: http://{options.control}/v1/clusters", flush=True)
            await stop.wait()
        finally:
            await runner.cleanup()


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
              f"http {counters['http']} (503 {counters['over_capacity']})")
    return OK


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


def _show(args: argparse.Namespace) -> int:
    return _call(args, "/v1/clusters")
