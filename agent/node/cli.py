"""eais-node: the node agent of a GPU server. It offers slices of the server's GPUs to the eais
controller and runs one fresh TensorFlow worker per attached instance, reachable only through
its TLS gateway.

\b
Start it with the controller's address, its agent CA and the node token:
    EAIS_NODE_TOKEN=... eais-node run --controller ctl.example:50051 --controller-ca ca.crt --advertise gpu1.example
The link to the controller is TLS: --controller-ca is the file the controller prints at start
("agent CA: STATE_DIR/agent-ca.crt"), and ctl.example must be a name its certificate holds
(its grpc_tls_names).
See what it would offer (GPUs, slice plan), without contacting anyone:
    eais-node inventory

Without a GPU (or with --backend cpu) it runs the CPU backend: TensorFlow on the CPU, registered
as "CPU backend (no accelerator)", for development and CI; slice memory is then nominal.

\b
Every option is also a setting, as an EAIS_NODE_* variable or a key of the --config TOML file:
    EAIS_NODE_CONTROLLER_CA_FILE=/etc/eais/agent-ca.crt
                                             controller_ca_file = "/etc/eais/agent-ca.crt"
    EAIS_NODE_GATEWAY_PORT=50052             gateway_port = 50052
    EAIS_NODE_WARM_WORKERS=2                 warm_workers = 2
    EAIS_NODE_METRICS_PORT=9471              metrics_port = 9471
                                             slice_plan = ["eais.ei-a6.2xlarge", "eais.ei-a6.xlarge"]
    EAIS_NODE_TIMING__REPORT_INTERVAL_S=5    timing.report_interval_s = 5
Workers run in their own network namespace (root, or CAP_SYS_ADMIN + CAP_NET_ADMIN) and, as root,
under a uid of their own; a restarted agent kills the workers its previous run left.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from agent.node.settings import NodeSettings, load_node_settings

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, rich_markup_mode=None)

ConfigOption = Annotated[Optional[Path], typer.Option("--config", help="TOML settings file (keys as in EAIS_NODE_* without the prefix, lower case).")]
BackendOption = Annotated[Optional[str], typer.Option("--backend", help="auto (GPU if NVML finds one, else CPU), gpu (fail without one) or cpu. Default auto.")]


def _settings(config: Path | None, **overrides: object) -> NodeSettings:
    try:
        return load_node_settings(config, **overrides)
    except Exception as error:  # noqa: BLE001 - a settings error is the operator's to fix, not a traceback
        typer.echo(f"error: bad settings: {error}", err=True)
        raise typer.Exit(2) from None


@app.command()
def run(
    config: ConfigOption = None,
    controller: Annotated[Optional[str], typer.Option(help="The controller's agent gRPC address, HOST:PORT. Default 127.0.0.1:50051.")] = None,
    controller_ca: Annotated[Optional[Path], typer.Option("--controller-ca", help="The controller's agent CA certificate (its STATE_DIR/agent-ca.crt, printed at its start); the link is TLS. Or EAIS_NODE_CONTROLLER_CA_FILE.")] = None,
    controller_plaintext: Annotated[bool, typer.Option("--controller-plaintext", help="No TLS to the controller: only for one started with --grpc-plaintext on a private network.")] = False,
    node_token_file: Annotated[Optional[Path], typer.Option(help="File holding the controller's node token (its STATE_DIR/node.token). Or set EAIS_NODE_TOKEN.")] = None,
    backend: BackendOption = None,
    gateway_port: Annotated[Optional[int], typer.Option(help="Port of the TLS gateway VM agents connect to (0: any free port). Default 50052.")] = None,
    advertise: Annotated[Optional[str], typer.Option(help="HOST (or HOST:PORT) VM agents dial; the gateway certificate is made for HOST. Default: this host's name, else 127.0.0.1.")] = None,
    warm_workers: Annotated[Optional[int], typer.Option(help="TensorFlow workers started ahead of attaches; the pool adds up to 4 more for a minute after a take finds it empty. Default 1.")] = None,
    metrics_port: Annotated[Optional[int], typer.Option(help="Serve Prometheus metrics at http://METRICS_HOST:PORT/metrics (workers and pool, gateway bytes and connections, heartbeats). Default 0: none (eais up turns it on).")] = None,
    metrics_host: Annotated[Optional[str], typer.Option(help="Address the metrics listener binds. Default 127.0.0.1.")] = None,
    worker_start: Annotated[Optional[str], typer.Option(help="fork: workers forked from one process that imported TensorFlow at start (an attach then takes milliseconds even back to back). spawn: each worker a fresh interpreter that imports TensorFlow (seconds each; the pool hides it only between attaches). Default fork.")] = None,
    worker_isolation: Annotated[Optional[str], typer.Option(help="netns: each worker in its own network namespace, reachable only through the gateway (needs root or CAP_SYS_ADMIN+CAP_NET_ADMIN). none: workers on the host network, reachable by anyone. Default netns.")] = None,
    region: Annotated[Optional[str], typer.Option(help="Region the node serves. Default cn-hangzhou.")] = None,
    zone: Annotated[Optional[str], typer.Option(help="Zone in that region. Default REGION-a.")] = None,
    node_id: Annotated[Optional[str], typer.Option(help="Stable id of this server. Default: its host name.")] = None,
    state_dir: Annotated[Optional[Path], typer.Option(help="Worker pid records and logs. Default $STATE_DIRECTORY or ~/.local/state/eais-node.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log gateway connections and controller notes.")] = False,
) -> None:
    """Register with the controller, serve attachments on this server's slices, until SIGTERM or Ctrl-C."""
    from agent.node.agent import NodeAgent, NodeAgentError

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings(config, controller=controller, controller_ca_file=controller_ca,
                         controller_plaintext=controller_plaintext or None, token_file=node_token_file, backend=backend,
                         gateway_port=gateway_port, advertise=advertise, warm_workers=warm_workers,
                         worker_start=worker_start, worker_isolation=worker_isolation, metrics_port=metrics_port,
                         metrics_host=metrics_host, region=region, zone=zone, node_id=node_id,
                         state_dir=state_dir)
    agent = NodeAgent(settings)
    try:
        agent.start()
    except NodeAgentError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    except OSError as error:
        typer.echo(f"error: cannot listen on {settings.gateway_host}:{settings.gateway_port}: {error.strerror or error}; "
                   "choose another --gateway-port", err=True)
        raise typer.Exit(1) from None
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: agent.stop_requested.set())
    agent.say(f"node agent starting: controller {settings.controller}, node {settings.resolved_node_id()}")
    while not agent.stop_requested.wait(0.5):
        pass
    agent.stop()
    raise typer.Exit(1 if agent.failure else 0)


@app.command()
def inventory(config: ConfigOption = None, backend: BackendOption = None) -> None:
    """Print the GPUs (or the CPU backend) and the slice plan as JSON; contacts nobody, starts nothing."""
    from agent.node.preflight import NodeAgentError, inventory_and_plan

    settings = _settings(config, backend=backend)
    try:
        found, nvml, slices = inventory_and_plan(settings)
    except NodeAgentError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    if nvml is not None:
        nvml.close()
    typer.echo(json.dumps({
        "backend": found.backend,
        "accelerator_model": found.accelerator_model,
        "gpus": [{"index": g.index, "name": g.name, "uuid": g.uuid, "memory_mib": g.memory_mib} for g in found.gpus],
        "cpu_model": found.cpu_model,
        "why_cpu_backend": found.why_cpu or None,
        "memory_capped": found.backend == "gpu",
        "slices": [{"local_id": s.local_id, "instance_type": s.instance_type, "gpu_index": s.gpu_index,
                    "memory_mib": s.memory_mib} for s in slices],
    }, indent=2))


def main() -> None:
    app(prog_name="eais-node")


if __name__ == "__main__":
    sys.exit(main())
