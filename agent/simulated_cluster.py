"""A whole controller plus a simulated fleet on this machine: what ``make run`` starts.

It runs ``eais-controller`` on its embedded defaults (SQLite under ``--data-dir``), creates a
``demo`` account once, writes its keys to ``DATA_DIR/credentials.json``, and starts one simulated
GPU node and one simulated client VM for that account over the real agent protocol, so every
EAIS action can be tried with the official SDKs at once. The node says it is simulated
(``Description`` in DescribeEais); real node and VM agents replace it in a later release.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

from agent.simulated_fleet import build_fleet, parse_args, say_line, simulated_vm_id
from controller.accounts import create_account
from controller.context import ControllerContext
from controller.key_store import node_token
from controller.server import start_controller
from controller.settings import load_settings
from controller.tables import ClientInstance, Node
from sqlmodel import select

REGION = "cn-hangzhou"


def _options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m agent.simulated_cluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path(".eais-run"), help="database, keys and credentials (default %(default)s)")
    parser.add_argument("--api-port", type=int, default=8080, help="EAIS API port (default %(default)s)")
    parser.add_argument("--grpc-port", type=int, default=50051, help="agent gRPC port (default %(default)s)")
    return parser.parse_args()


def _demo_credentials(ctx: ControllerContext, path: Path, endpoint: str) -> dict[str, str]:
    if path.exists():
        saved = json.loads(path.read_text())
        saved["Endpoint"] = endpoint
    else:
        made = create_account(ctx, "demo", balance=Decimal("1000"), real_name_verified=True).as_json()
        saved = {**made, "Endpoint": endpoint, "RegionId": REGION,
                 "ClientInstanceId": simulated_vm_id(made["AccessKeyId"], REGION, 1)}
    path.write_text(json.dumps(saved, indent=2) + "\n")
    path.chmod(0o600)
    return saved


def _wait_for_fleet(ctx: ControllerContext, stop: threading.Event, timeout_s: float = 15.0) -> None:
    """Say ready only once the simulated node and VM have registered."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not stop.is_set():
        with ctx.db.read() as session:
            if session.exec(select(Node)).first() and session.exec(select(ClientInstance)).first():
                return
        stop.wait(0.1)
    say_line("warning: the simulated fleet has not registered yet; see the lines above")


def main() -> int:
    options = _options()
    data = options.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    settings = load_settings(db_url=f"sqlite:///{data}/controller.db", state_dir=data / "state",
                             api_port=options.api_port, grpc_port=options.grpc_port)
    say_line(f"opening {settings.db_url} ...")
    ctx = ControllerContext.open(settings)
    try:
        running = start_controller(ctx)
    except (OSError, RuntimeError) as error:
        say_line(f"error: cannot bind ports {options.api_port}/{options.grpc_port}: {error}. "
                 "Is another controller running? Try --api-port/--grpc-port.")
        return 1
    running.start_api_in_thread()
    endpoint = f"127.0.0.1:{running.api_port}"
    creds = _demo_credentials(ctx, data / "credentials.json", endpoint)
    fleet = build_fleet(parse_args([
        "--controller", f"127.0.0.1:{running.grpc_port}", "--node-token", node_token(settings),
        "--access-key-id", creds["AccessKeyId"], "--access-key-secret", creds["AccessKeySecret"],
        "--region", REGION, "--vms", "1", "--slices-per-type", "2",
    ]))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    for agent in fleet:
        threading.Thread(target=agent.run, args=(stop,), daemon=True).start()
    _wait_for_fleet(ctx, stop)
    say_line(f"EAIS API http://{endpoint}/  admin http://{endpoint}/admin/docs (token {settings.resolved_state_dir() / 'admin.token'})")
    say_line(f"credentials for the SDKs: {data / 'credentials.json'} (account 'demo', region {REGION}, "
             f"client instance {creds['ClientInstanceId']})")
    say_line("ready (a simulated node and VM are registered; Ctrl-C stops)")
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    for agent in fleet:
        agent.close()
    running.stop()
    say_line("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
