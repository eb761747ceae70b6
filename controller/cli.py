"""eais-controller: run the EAIS-compatible controller and administer accounts and bills.

Start with: eais-controller serve (SQLite in ./eais-controller.db, EAIS API on 127.0.0.1:8080, agent gRPC with TLS on 127.0.0.1:50051; agents are given its agent CA, STATE_DIR/agent-ca.crt, as --controller-ca).

Then: eais-controller account create --name NAME --balance 500 --real-name-verified, for an AccessKey the official SDKs can use.

Settings also come from EAIS_* environment variables and a --config TOML file (see the README).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from controller.context import ControllerContext
from controller.settings import ControllerSettings, load_settings

app = typer.Typer(help=__doc__, no_args_is_help=True, rich_markup_mode="rich", add_completion=False)
account_app = typer.Typer(help="Create and list accounts (each with an AccessKey for the EAIS API).", no_args_is_help=True)
app.add_typer(account_app, name="account")
err = Console(stderr=True)

DbOption = Annotated[Optional[str], typer.Option("--db", help="Database URL: sqlite:///path.db or postgresql://user@host/db. Default: EAIS_DB_URL or sqlite:///eais-controller.db")]
ConfigOption = Annotated[Optional[Path], typer.Option("--config", help="TOML settings file (see README: Configuration).")]
StateOption = Annotated[Optional[Path], typer.Option("--state-dir", help="Where the master key and tokens are kept. Default: .eais beside a SQLite file, else ~/.local/state/eais.")]


def _settings(config: Path | None, **overrides: object) -> ControllerSettings:
    try:
        return load_settings(config, **overrides)
    except Exception as exc:  # noqa: BLE001 - settings errors are the user's to fix, not a traceback
        err.print(f"[red]error:[/red] bad settings: {exc}")
        raise typer.Exit(2) from None


def _open(settings: ControllerSettings) -> ControllerContext:
    try:
        return ControllerContext.open(settings)
    except Exception as exc:  # noqa: BLE001
        err.print(f"[red]error:[/red] cannot open the database {settings.db_url}: {exc}")
        raise typer.Exit(1) from None


@app.command()
def serve(
    db: DbOption = None,
    config: ConfigOption = None,
    state_dir: StateOption = None,
    api_host: Annotated[Optional[str], typer.Option(help="Address of the EAIS API. Default 127.0.0.1.")] = None,
    api_port: Annotated[Optional[int], typer.Option(help="Port of the EAIS API (HTTP). Default 8080.")] = None,
    grpc_host: Annotated[Optional[str], typer.Option(help="Address of the agent gRPC service. Default 127.0.0.1.")] = None,
    grpc_port: Annotated[Optional[int], typer.Option(help="Port of the agent gRPC service. Default 50051.")] = None,
    grpc_tls_name: Annotated[Optional[list[str]], typer.Option("--grpc-tls-name", metavar="NAME", help="A host name or address agents dial, named in the agent gRPC certificate (repeat for each). Default: this host's name, localhost, 127.0.0.1, ::1 and --grpc-host when it is a specific address.")] = None,
    grpc_plaintext: Annotated[bool, typer.Option("--grpc-plaintext", help="Serve the agent gRPC service without TLS (agents then need --controller-plaintext): only on a private network nobody else reaches.")] = False,
    api_processes: Annotated[int, typer.Option(min=1, max=64, help="Processes answering the EAIS API (one per core helps under load).")] = 1,
) -> None:
    """Run the controller: EAIS API, admin API, agent gRPC service and reconciler, until Ctrl-C."""
    from eais_plumbing.service_notify import ServiceNotifier, ready_then_watchdog
    from controller.key_store import admin_token, node_token
    from controller.server import start_controller

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings(config, db_url=db, state_dir=state_dir, api_host=api_host, api_port=api_port,
                         grpc_host=grpc_host, grpc_port=grpc_port, grpc_tls_names=grpc_tls_name or None,
                         grpc_plaintext=grpc_plaintext or None)
    err.print(f"eais-controller: opening {settings.db_url} and applying migrations ...")
    ctx = _open(settings)
    admin_token(settings)  # create the token files now, so the lines below can point at them
    node_token(settings)
    try:
        running = start_controller(ctx, api_processes=api_processes)
    except (OSError, RuntimeError) as exc:
        err.print(f"[red]error:[/red] cannot bind: {exc}. Is another controller running? Choose other ports with --api-port/--grpc-port.")
        raise typer.Exit(1) from None
    state = settings.resolved_state_dir()
    err.print(f"eais-controller: EAIS API      http://{settings.api_host}:{running.api_port}/")
    err.print(f"eais-controller: admin API     http://{settings.api_host}:{running.api_port}/admin/docs  (token: {state / 'admin.token'})")
    err.print(f"eais-controller: agent gRPC    {settings.grpc_host}:{running.grpc_port}{_agent_link_security(settings)}"
              f"  (node token: {state / 'node.token'})", soft_wrap=True)
    _print_agent_trust(settings)
    err.print("eais-controller: ready (Ctrl-C stops)")
    notifier = ServiceNotifier()
    serving = f"EAIS API on {settings.api_host}:{running.api_port}, agent gRPC on {settings.grpc_host}:{running.grpc_port}"
    # uvicorn re-raises SIGTERM after its graceful shutdown; as an exception it lets the clean-up below run.
    previous_sigterm = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        running.serve_api_forever(every_second=ready_then_watchdog(notifier, serving))
    except _Terminated:
        pass  # a requested stop (systemctl stop): exit 0, which systemd counts as clean
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
        notifier.stopping()
        running.stop()
        err.print("eais-controller: stopped")


def _agent_link_security(settings: ControllerSettings) -> str:
    if settings.grpc_plaintext:
        return ", plaintext"
    return f", TLS for {', '.join(settings.resolved_grpc_tls_names())}"


def _print_agent_trust(settings: ControllerSettings) -> None:
    from controller.agent_ca import agent_ca_certificate_path

    if settings.grpc_plaintext:
        err.print("eais-controller: [yellow]warning:[/yellow] --grpc-plaintext: the agent link is not encrypted; "
                  "node, session and attachment tokens cross the network readable. Keep it on a private network "
                  "nobody else reaches; agents need --controller-plaintext.", soft_wrap=True)
        return
    err.print(f"eais-controller: agent CA: {agent_ca_certificate_path(settings)} — give it to agents as --controller-ca",
              soft_wrap=True)


class _Terminated(BaseException):
    """SIGTERM, raised where the serving loop returns (BaseException: no ``except Exception`` swallows it)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated


@account_app.command("create")
def account_create(
    name: Annotated[str, typer.Option(help="Account name (unique).")],
    db: DbOption = None,
    config: ConfigOption = None,
    state_dir: StateOption = None,
    balance: Annotated[str, typer.Option(help="Opening balance in CNY (creating instances needs ≥ 100).")] = "0",
    real_name_verified: Annotated[bool, typer.Option("--real-name-verified", help="Mark the account real-name verified (needed to create instances).")] = False,
) -> None:
    """Create an account; prints JSON with AccountId, AccessKeyId and AccessKeySecret (shown once)."""
    from controller.accounts import create_account
    from controller.errors import EaisError

    try:
        amount = Decimal(balance)
    except InvalidOperation:
        err.print(f"[red]error:[/red] --balance {balance!r} is not a number")
        raise typer.Exit(2) from None
    ctx = _open(_settings(config, db_url=db, state_dir=state_dir))
    try:
        made = create_account(ctx, name, balance=amount, real_name_verified=real_name_verified)
    except EaisError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from None
    print(json.dumps(made.as_json(), indent=2))


@account_app.command("list")
def account_list(db: DbOption = None, config: ConfigOption = None, state_dir: StateOption = None) -> None:
    """List accounts with balance and debt state (JSON)."""
    from controller.accounts import list_accounts
    from controller.money import from_micro

    ctx = _open(_settings(config, db_url=db, state_dir=state_dir))
    rows = [{"AccountId": a.id, "Name": a.name, "Balance": str(from_micro(a.balance_micro)),
             "InDebt": a.balance_micro < 0, "RealNameVerified": a.real_name_verified} for a in list_accounts(ctx)]
    print(json.dumps(rows, indent=2, ensure_ascii=False))


@app.command()
def bill(
    db: DbOption = None,
    config: ConfigOption = None,
    state_dir: StateOption = None,
    account: Annotated[Optional[str], typer.Option(help="Only this account (AccountId).")] = None,
    instance: Annotated[Optional[str], typer.Option(help="Only this instance (eais-...).")] = None,
    close: Annotated[bool, typer.Option("--close", help="First close every complete hour (as the running controller does).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show hourly bill items (derived from the transition log), balances, and charges so far this hour."""
    from controller import ledger
    from controller.bill_report import bill_report, print_bill_report

    ctx = _open(_settings(config, db_url=db, state_dir=state_dir))
    if close:
        run = ledger.close_hours(ctx)
        err.print(f"closed {run.hours_closed} hour(s), {len(run.items)} item(s)")
    report = bill_report(ctx, account_id=account, instance_id=instance)
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        print_bill_report(report, Console())


@app.command()
def migrate(db: DbOption = None, config: ConfigOption = None) -> None:
    """Apply database migrations up to the newest (serve does this too)."""
    settings = _settings(config, db_url=db)
    _open(settings)
    err.print(f"eais-controller: {settings.db_url} is at the newest schema")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
