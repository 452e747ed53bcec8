"""`tracetrack bridge [--port P]` and `tracetrack bridge check-config`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.cliargs import port
from common.topology import BRIDGE_PORT


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    bridge = subparsers.add_parser(
        "bridge",
        help="run the alert bridge (Alertmanager webhooks -> email, SMS, webhooks)",
    )
    bridge.add_argument(
        "--port",
        type=port,
        default=None,
        help=f"listen port (default: BRIDGE_PORT or {BRIDGE_PORT})",
    )
    bridge.add_argument("--host", default=None, help="listen address (default: TRACETRACK_HOST)")
    bridge.set_defaults(func=serve)
    sub = bridge.add_subparsers(dest="bridge_command", metavar="SUBCOMMAND")
    check = sub.add_parser(
        "check-config", help="validate alert_config.py and the channel settings, then exit"
    )
    check.add_argument("--quiet", action="store_true", help="print errors only")
    check.set_defaults(func=check_config)
    native = sub.add_parser(
        "native-route",
        help="write an alertmanager.yml whose bridge-down receiver reaches the critical "
        "recipients without any bridge (Alertmanager's own email and Slack/Discord)",
    )
    native.add_argument("--template", type=Path, required=True, help="alertmanager.yml to fill")
    native.add_argument("--out", type=Path, required=True, help="where to write the result")
    native.add_argument(
        "--shared-secrets",
        action="store_true",
        help="make the SMTP password file readable by Alertmanager's own user",
    )
    native.set_defaults(func=native_route)


def _load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    from alert_bridge.config import ConfigError, check_settings, load_config
    from alert_bridge.settings import BridgeSettings
    from common.settings import settings_error

    try:
        settings = BridgeSettings()
    except ValidationError as exc:
        return None, None, [settings_error(exc)], []
    errors, warnings = check_settings(settings)
    config = None
    try:
        config = load_config(settings.alert_config_file)
    except ConfigError as exc:
        errors.insert(0, str(exc))
    return settings, config, errors, warnings


def check_config(args: argparse.Namespace) -> int:
    from alert_bridge.config import disabled_channel_warnings
    from alert_bridge.providers.base import display_recipient
    from common.alerting import CHANNEL_MATRIX

    settings, config, errors, warnings = _load(args)
    if config is not None:
        warnings += disabled_channel_warnings(config, settings)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    if errors:
        return 1
    assert config is not None
    if not args.quiet:
        print(f"{config.source}: OK, {config.count()} recipients")
        for severity, channels in CHANNEL_MATRIX.items():
            print(f"  {severity}: {' + '.join(channels)}")
            for r in config.for_severity(severity):
                fmt = f" ({r.format})" if r.format else ""
                print(f"    {r.channel:8} {display_recipient(r.channel, r.address)}{fmt}")
        for w in warnings:
            print(f"warning: {w}")
    return 0


def serve(args: argparse.Namespace) -> int:
    import logging

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings, config, errors, warnings = _load(args)
    if errors:
        for e in errors:
            print(f"alert bridge: configuration error: {e}", file=sys.stderr)
        return 2
    from alert_bridge.config import disabled_channel_warnings

    for w in warnings + disabled_channel_warnings(config, settings):
        logging.getLogger("alert_bridge").warning("%s", w)

    import uvicorn

    from alert_bridge.app import create_app
    from alert_bridge.service import BridgeService

    # Hand the GIL to the event loop sooner when delivery threads are busy: the
    # webhook answer is on Alertmanager's clock.
    sys.setswitchinterval(0.001)
    port = args.port or settings.bridge_port
    host = args.host or settings.host
    from common.cliargs import listen_problem

    if problem := listen_problem(host, port):
        print(f"alert bridge: {problem}", file=sys.stderr)
        return 2
    try:
        service = BridgeService(settings, port, config)
    except ValueError as exc:  # token or provider settings
        print(f"alert bridge: configuration error: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        create_app(service),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    return 0


def native_route(args: argparse.Namespace) -> int:
    """For docker-compose's Alertmanagers: they cannot import alert_config.py."""
    from alert_bridge.native_route import render_file

    settings, config, errors, _warnings = _load(args)
    if not errors and not args.template.is_file():
        errors.append(f"--template: {args.template} does not exist")
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    if errors:
        return 2
    assert config is not None
    try:
        out = render_file(args.template, args.out, config, settings, args.shared_secrets)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0
