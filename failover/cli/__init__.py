"""The ``failover`` command. Exit codes: 0 ok, 1 user error, 2 usage, 3 daemon unreachable,
70 a task of the daemon died."""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import json
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

import failover.lab.command as lab_command
import failover.simulate.command as simulate_command
from failover import __version__
from failover.api.token import TOKEN_ENV, admin_token
from failover.cli import admin_client, loops
from failover.config import Config, ConfigError, all_jobs, load, worst_case_rates

if TYPE_CHECKING:
    from failover.daemon import Daemon

OK, USER_ERROR, USAGE, UNREACHABLE = 0, 1, 2, 3
TASK_DIED = 70
"""An essential task died (EX_SOFTWARE): a bug; the data plane keeps its weights."""
DEFAULT_STATUS_URL = "http://127.0.0.1:9470"


def _runnable(source: str) -> Config | None:
    """The config at ``source`` if `run` could start with it; else None, every problem
    printed, located. `check` and `run` both ask this, so they refuse alike."""
    try:
        config = load(source)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None
    return None if _refused(source, config) else config


def _check(args: argparse.Namespace) -> int:
    config = _runnable(args.config)
    if config is None:
        return USER_ERROR
    if admin_token(config) is None:
        print(f"warning: the admin API will be disabled: no token (set "
              f"listen.admin_token_file or {TOKEN_ENV})", file=sys.stderr)
    rates = worst_case_rates(all_jobs(config.clusters, config.vantage), config.probing)
    budget = config.probing.budget
    print(f"{args.config}: ok, {len(config.clusters)} clusters")
    print("worst-case probe requests per second (retries included, shortest jittered interval):")
    width = max(len(target) for target in rates.per_target)
    for target, rate in sorted(rates.per_target.items()):
        print(f"  {target:<{width}}  {rate:7.2f}/s  (cap {budget.per_target_per_second:g}/s)")
    print(f"  {'total':<{width}}  {rates.total:7.2f}/s  (cap {budget.total_per_second:g}/s)")
    if rates.in_flight > budget.max_in_flight:
        print(f"warning: up to {rates.in_flight:.0f} probes may be in flight at once, above "
              f"max_in_flight ({budget.max_in_flight}); some runs will be delayed",
              file=sys.stderr)
    _show_certificates(config)
    return OK


EXPIRY_WARNING_DAYS = 14
"""Days left under which `check` warns of a certificate: two weeks to renew by hand when
the automation that should have renewed it has failed."""


def _show_certificates(config: Config) -> None:
    """Each certificate the config serves or presents, its expiry, and a warning for one
    about to expire (files that cannot be used were refused already, when it was loaded)."""
    etcd = None if config.coordination is None else config.coordination.etcd.tls
    for key, tls in (("listen.tls", config.listen.tls), ("coordination.etcd.tls", etcd)):
        certificate = None if tls is None else tls.material.certificate
        if certificate is None:
            continue
        days = certificate.days_left()
        print(f"{key}: {certificate.subject}, {certificate.fingerprint}, expires "
              f"{certificate.not_after:%Y-%m-%d %H:%M} UTC ({days:.0f} days)")
        if days <= 0:
            print(f"warning: {key}: the certificate has expired: clients will refuse it",
                  file=sys.stderr)
        elif days < EXPIRY_WARNING_DAYS:
            print(f"warning: {key}: the certificate expires in {days:.1f} days",
                  file=sys.stderr)


def _refused(source: str, config: Config) -> bool:
    """Print, located, every reason `run` would refuse ``config``; True if there is one."""
    from failover.daemon.validate import refusals  # noqa: PLC0415 - keep `status` light

    found = refusals(config)
    for refusal in found:
        keys = tuple(k for k in refusal.at if isinstance(k, str))
        print(f"{source}:{_line_of(Path(source), keys)}: {refusal.message}", file=sys.stderr)
    return bool(found)


def _line_of(path: Path, keys: tuple[str, ...]) -> int:
    """The line of ``keys`` in the YAML file at ``path`` (already loaded once); 1 if unknown."""
    try:
        node: yaml.Node | None = yaml.compose(path.read_text(encoding="utf-8"),
                                              Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return 1
    line = 1
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            break
        found = next(((k, v) for k, v in node.value
                      if isinstance(k, yaml.ScalarNode) and k.value == key), None)
        if found is None:
            break
        line, node = found[0].start_mark.line + 1, found[1]
    return line


def _run(args: argparse.Namespace) -> int:
    from failover.cli import logs  # noqa: PLC0415 - keep `check` and `status` light
    from failover.daemon import Daemon  # noqa: PLC0415 - same

    logs.setup(args.log_level, args.log_format)
    config = _runnable(args.config)
    if config is None:
        return USER_ERROR
    return serve(lambda: Daemon(config, Path(args.config)), args.config, args.event_loop)


def serve(make: Callable[[], Daemon], where: str, event_loop: str = "auto") -> int:
    """Run the daemon ``make`` builds until it stops; the process's exit code: 0 stopped,
    1 could not start, 70 a task died."""
    with asyncio.Runner(loop_factory=loops.factory(event_loop)) as runner:
        return runner.run(serving(make, where))


async def serving(make: Callable[[], Daemon], where: str) -> int:
    """``serve`` inside a running loop, where the daemon's parts are made."""
    from failover.daemon import StartupError, TaskDied, UnsupportedActuator  # noqa: PLC0415

    try:
        daemon = make()
        # The config and the daemon's parts live as long as the process: out of the
        # collector's sight, a full collection no longer walks them (tens of milliseconds
        # with the loop stopped, at a thousand clusters).
        gc.freeze()
        # A worker thread rendering /metrics holds the GIL for up to this long each time the
        # loop wants it back; at the default 5 ms the loop, which wants it after every poll,
        # falls behind by hundreds of milliseconds during a scrape.
        sys.setswitchinterval(0.001)
        await daemon.run()
    except (UnsupportedActuator, StartupError) as exc:
        print(f"{where}: {exc}", file=sys.stderr)
        return USER_ERROR
    except TaskDied as exc:
        # Logged with its traceback where it died; this is the exit the supervisor sees.
        print(f"failover: {exc}; exiting so that the service manager restarts it",
              file=sys.stderr)
        return TASK_DIED
    return OK


def _config_schema(args: argparse.Namespace) -> int:
    # Generated from the models the loader validates with, so it cannot drift from them.
    # Editors use it to complete and check keys; cross-field rules (the probe budget,
    # unknown cluster names) remain `failover check`'s.
    print(json.dumps(Config.model_json_schema(), indent=2))
    return OK


def _get_json(url: str, context: ssl.SSLContext | None, timeout: float = 5.0) -> Any:
    conn, prefix = admin_client.connection(url, context, timeout)
    try:
        conn.request("GET", prefix + "/v1/status")
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        msg = f"HTTP {response.status} {response.reason}"
        raise ValueError(msg)
    return json.loads(body)


def _status_target(args: argparse.Namespace) -> tuple[str, ssl.SSLContext]:
    """``--url``, else the ``listen.status`` of ``-c`` (nothing else of it is read), and how
    to trust its certificate."""
    listen = None
    if args.config:
        try:
            listen = admin_client.listen_section(args.config)
        except ConfigError as exc:
            msg = f"{exc}\n(--url reaches the daemon without the config)"
            raise admin_client.Usage(msg) from exc
    context = admin_client.trust(listen, args.cacert, args.cert, args.key)
    if args.url:
        return str(args.url), context
    if listen is None:
        return DEFAULT_STATUS_URL, context
    return admin_client.listen_url(listen.status, "listen.status",
                                   listen.tls is not None), context


def _status(args: argparse.Namespace) -> int:
    try:
        url, context = _status_target(args)
        url = url.rstrip("/")
    except admin_client.Usage as exc:
        print(f"failover: {exc}", file=sys.stderr)
        return USER_ERROR
    try:
        doc = _get_json(url, context)
    except (OSError, ValueError, http.client.HTTPException, admin_client.Usage) as exc:
        print(f"failover: daemon unreachable at {url}: {exc}", file=sys.stderr)
        return UNREACHABLE
    if args.json:
        print(json.dumps(doc, indent=2))
        return OK
    frozen = f"  FROZEN ({doc.get('frozen_reason')})" if doc.get("frozen") else ""
    print(f"plan version {doc.get('version')}{frozen}")
    header = ("RANK", "CLUSTER", "STATE", "SCORE", "SHARE", "TARGET", "REASON")
    rows = [header] + [
        (str(c["rank"]), c["name"], c["state"], f"{c['score']:.2f}", f"{c['share']:.3f}",
         f"{c['target_share']:.3f}", c["reason"])
        for c in doc.get("clusters", [])
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        print("  ".join(cells) + "  " + row[-1])
    return OK


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="failover", description=__doc__)
    top.add_argument("--version", action="version", version=f"failover {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("-c", "--config", required=True, help="YAML config file")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.add_argument("--log-format", default="text", choices=["text", "json"])
    run.add_argument("--event-loop", default="auto", choices=loops.CHOICES,
                     help="auto: uvloop where it is installed, else asyncio's own")
    run.set_defaults(func=_run)

    check = sub.add_parser("check", help="validate a config and print its worst-case probe rates")
    check.add_argument("-c", "--config", required=True, help="YAML config file")
    check.set_defaults(func=_check)

    status = sub.add_parser("status", help="show clusters as the daemon sees them")
    status.add_argument("--url", help=f"status listener URL (default {DEFAULT_STATUS_URL})")
    status.add_argument("-c", "--config", help="take the status listener's address from it")
    status.add_argument("--json", action="store_true", help="print the raw /v1/status document")
    admin_client.tls_arguments(status)
    status.set_defaults(func=_status)

    schema = sub.add_parser("config-schema", help="print the config file's JSON Schema")
    schema.set_defaults(func=_config_schema)

    lab_command.register(sub)
    admin_client.register(sub)
    simulate_command.register(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except BrokenPipeError:
        # `failover status | head`: the reader left; nothing is wrong.
        sys.stderr.close()
        return OK
    return code
