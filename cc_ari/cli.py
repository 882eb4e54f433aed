"""`cc-ari run` (the service) and `cc-ari migrate` (apply sql/ migrations)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from cc_ari import logs
from cc_ari.callflow import CallFlowError
from cc_ari.settings import Settings, SettingsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cc-ari", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run", help="run the service (settings from the environment)")
    sub.add_parser("migrate", help="apply database migrations")
    check = sub.add_parser("check-config", help="validate the call-flow file and exit")
    check.add_argument("path", nargs="?")
    dialer = sub.add_parser("dialer", help="outbound dialing tools").add_subparsers(dest="dialer_cmd", required=True)
    simulate = dialer.add_parser("simulate", help="compare pacing policies on a simulated campaign")
    from cc_ari.dialer import cli as dialer_cli

    dialer_cli.add_arguments(simulate)
    campaign = sub.add_parser("campaign", help="outbound campaigns, through the running service's HTTP API")
    from cc_ari.campaigns import cli as campaign_cli

    campaign_cli.add_arguments(campaign)
    export = sub.add_parser("export", help="export reports from the database (queue_log)")
    from cc_ari.reporting import export_cli

    export_cli.add_arguments(export)
    args = parser.parse_args(argv)
    if args.cmd == "dialer":
        return dialer_cli.run(simulate, args)
    if args.cmd == "campaign":
        return campaign_cli.run(campaign, args)
    if args.cmd == "export":
        return export_cli.run(export, args)

    if args.cmd == "check-config":
        from pathlib import Path

        from cc_ari import callflow

        try:
            flow = callflow.load(Path(args.path or "config/cc_ari.toml"))
        except CallFlowError as exc:
            print(f"cc-ari: {exc}", file=sys.stderr)
            return 2
        print(f"ok: {len(flow.routes)} routes, {len(flow.queues)} queues, {len(flow.menus)} menus")
        return 0
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"cc-ari: bad settings: {exc}", file=sys.stderr)
        return 2
    if args.cmd == "migrate":
        from cc_ari.db.migrate import migrate

        logs.configure(None, settings.log_level)
        applied = asyncio.run(migrate(settings.database_url))
        print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")
        return 0
    logs.configure(settings.log_dir, settings.log_level)
    from cc_ari.app import serve

    try:
        asyncio.run(serve(settings))
    except CallFlowError as exc:
        print(f"cc-ari: bad call-flow config: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
