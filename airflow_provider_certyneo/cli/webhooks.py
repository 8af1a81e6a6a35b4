"""``certyneo-webhooks``: register the provider's webhook receiver with Certyneo for a connection, list and
remove webhooks. The secret is shown once, with the command that stores it where the receiver reads it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from airflow_provider_certyneo.client import defaults
from airflow_provider_certyneo.client.webhooks import EVENTS, OUTCOME_OF_EVENT


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="certyneo-webhooks", description=__doc__)
    p.add_argument(
        "--conn-id", default=defaults.CONN_ID, help="the certyneo connection (default %(default)s)"
    )
    commands = p.add_subparsers(dest="command", required=True)
    register = commands.add_parser("register", help="register the receiver's URL; prints the secret once")
    register.add_argument(
        "--url",
        required=True,
        help="the receiver as Certyneo reaches it: https://<your airflow>/certyneo/webhooks/<conn id>",
    )
    register.add_argument(
        "--events",
        nargs="+",
        default=list(OUTCOME_OF_EVENT),
        choices=EVENTS,
        help="what to receive (default: the events the receiver turns into asset events: %(default)s)",
    )
    commands.add_parser("list", help="list the webhooks of the connection's key")
    delete = commands.add_parser("delete", help="unregister a webhook")
    delete.add_argument("webhook_id")
    return p


def store_instructions(conn_id: str, secret: str) -> str:
    fragment = json.dumps({"webhook_secret": secret})
    return (
        f"Store the secret in the extra of connection {conn_id!r} (it is shown only now):\n"
        f"  - in the Airflow UI: Admin > Connections > {conn_id} > 'Webhook secret' (or merge {fragment} "
        "into Extra);\n"
        f"  - in a secrets backend: add the key webhook_secret to the connection's extra;\n"
        f"  - from the CLI: airflow connections delete {conn_id} && airflow connections add {conn_id} "
        f"--conn-json '<the connection JSON with \"extra\": {fragment}>'"
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from airflow_provider_certyneo.exceptions import CertyneoError
    from airflow_provider_certyneo.hooks.certyneo import CertyneoHook

    try:
        with CertyneoHook(args.conn_id) as hook:
            if args.command == "register":
                webhook: dict[str, Any] = dict(hook.create_webhook(args.url, args.events))
                events = ", ".join(webhook["events"])
                print(f"Registered webhook {webhook['id']} -> {webhook['url']} for {events}")
                print(store_instructions(args.conn_id, webhook["secret"]))
            elif args.command == "list":
                for item in hook.list_webhooks():
                    events = ", ".join(item["events"])
                    print(f"{item['id']}  {item['url']}  {events}  {item.get('createdAt', '')}")
            else:
                hook.delete_webhook(args.webhook_id)
                print(f"Deleted webhook {args.webhook_id}")
    except CertyneoError as exc:
        print(f"certyneo-webhooks: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
