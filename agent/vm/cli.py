"""eais-agent: the VM agent. It registers this VM with the eais controller and runs the local TensorFlow endpoint.

While an EAIS instance is attached to this VM (InUse), TensorFlow apps that connect to the endpoint (default 127.0.0.1:8470) run on the remote accelerator through an encrypted, authenticated channel to its GPU node. At any other time their calls fail at once with UNAVAILABLE and a message saying why.

Start with: eais-agent run --controller HOST:50051 --controller-ca agent-ca.crt --credentials-file credentials.json --zone cn-hangzhou-a --vpc-id vpc-... --vswitch-id vsw-...

The link to the controller is TLS: --controller-ca is the controller's agent CA, the file its start prints ("agent CA: STATE_DIR/agent-ca.crt"); copy it to this VM. The address in --controller must be one the controller's certificate names (its grpc_tls_names).

Check with: eais-agent status (exit code 0 serving, 1 not serving, 2 agent unreachable).

Every setting also comes from EAIS_AGENT_* environment variables (EAIS_AGENT_ACCESS_KEY_SECRET ...) and a --config TOML file with the same names (controller, endpoint, zone_id, timing.give_up_after_s ...); flags win over both.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from agent.vm.settings import DEFAULT_ENDPOINT, SettingsError, VmAgentSettings, load_settings
from agent.vm.status import EXIT_UNREACHABLE, show_status

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML settings file (keys as in EAIS_AGENT_*, lower case, without the prefix).")]
EndpointOption = Annotated[str | None, typer.Option("--endpoint", help=f"Local TensorFlow endpoint HOST:PORT. Default {DEFAULT_ENDPOINT}.")]


@app.command()
def run(
    config: ConfigOption = None,
    controller: Annotated[str | None, typer.Option(help="The controller's agent gRPC address. Default 127.0.0.1:50051.")] = None,
    controller_ca: Annotated[Path | None, typer.Option("--controller-ca", help="The controller's agent CA certificate (its STATE_DIR/agent-ca.crt, printed at its start); the link is TLS. Or EAIS_AGENT_CONTROLLER_CA_FILE.")] = None,
    controller_plaintext: Annotated[bool, typer.Option("--controller-plaintext", help="No TLS to the controller: only for one started with --grpc-plaintext on a private network.")] = False,
    credentials_file: Annotated[Path | None, typer.Option(help="JSON as `eais up` writes it: AccessKeyId, AccessKeySecret, RegionId, ClientInstanceId.")] = None,
    endpoint: EndpointOption = None,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus metrics at http://METRICS_HOST:PORT/metrics (attachment state, relayed bytes, connections, data-path probes, heartbeats). Default 0: none (eais up turns it on).")] = None,
    metrics_host: Annotated[str | None, typer.Option(help="Address the metrics listener binds. Default 127.0.0.1.")] = None,
    client_instance_id: Annotated[str | None, typer.Option(help="This VM's id: i-... (ECS) or eci-... (ECI).")] = None,
    region: Annotated[str | None, typer.Option(help="Region of this VM, e.g. cn-hangzhou.")] = None,
    zone: Annotated[str | None, typer.Option(help="Zone of this VM, e.g. cn-hangzhou-a.")] = None,
    vpc_id: Annotated[str | None, typer.Option(help="VPC of this VM (vpc-...).")] = None,
    vswitch_id: Annotated[str | None, typer.Option(help="vSwitch of this VM (vsw-...); an instance attaches only within it.")] = None,
    kind: Annotated[str | None, typer.Option(help="ECS or ECI. Default: from the id.")] = None,
    name: Annotated[str | None, typer.Option(help="Display name of this VM.")] = None,
    instance_type: Annotated[str | None, typer.Option(help="This VM's own instance type, e.g. ecs.g7.large.")] = None,
    access_key_id: Annotated[str | None, typer.Option(help="AccessKey ID of the account this VM belongs to; its secret comes from EAIS_AGENT_ACCESS_KEY_SECRET, the config file or the credentials file, never a flag.")] = None,
    state_dir: Annotated[Path | None, typer.Option(help="The agent's small state (its refusal socket). Default $STATE_DIRECTORY or ~/.local/state/eais-agent.")] = None,
    notebook_host: Annotated[str | None, typer.Option(help="Address notebook servers (CreateEaiJupyter) listen on. Default 127.0.0.1; the VM's private address to reach them from the VPC.")] = None,
    notebook_url_host: Annotated[str | None, typer.Option(help="Address DescribeEais JupyterUrl names. Default: --notebook-host.")] = None,
    notebook_uid: Annotated[str | None, typer.Option(help="uid notebook servers run as: a number (agent as root), 'none' (the agent's own) or 'auto' (default).")] = None,
    notebook_dir: Annotated[Path | None, typer.Option(help="Where notebooks' homes live (kept across StopEaiJupyter). Default <tmp>/eais-notebooks-<client instance id>.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also log each channel attempt and relay change.")] = False,
) -> None:
    """Run the agent until SIGTERM or Ctrl-C: register, follow attach/detach, serve or refuse TensorFlow calls."""
    _configure_logging(verbose)
    settings = _settings(config, controller=controller, controller_ca_file=controller_ca,
                         controller_plaintext=controller_plaintext or None, credentials_file=credentials_file,
                         endpoint=endpoint, metrics_port=metrics_port, metrics_host=metrics_host,
                         client_instance_id=client_instance_id, region_id=region, zone_id=zone, vpc_id=vpc_id,
                         vswitch_id=vswitch_id, kind=kind, name=name, instance_type=instance_type,
                         access_key_id=access_key_id, state_dir=state_dir, notebook_host=notebook_host,
                         notebook_url_host=notebook_url_host, notebook_uid=notebook_uid, notebook_dir=notebook_dir)
    from agent.vm.agent import VmAgent, say_line  # the service's imports, not the status command's

    try:
        agent = VmAgent(settings).start()
    except SettingsError as error:
        _fail(f"bad settings: {error}", 2)
    except OSError as error:
        _fail(f"cannot listen on the TensorFlow endpoint {settings.endpoint} or the metrics port "
              f"{settings.metrics_port or '(none)'}: {error.strerror or error}. Is another agent (or a TensorFlow "
              "server) using it? Try --endpoint or --metrics-port.", 1)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    code = agent.run(stop)
    say_line("stopped" if code == 0 else "stopped after an error")
    raise typer.Exit(code)


@app.command()
def status(
    endpoint: EndpointOption = None,
    config: ConfigOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the agent's answer.")] = 3.0,
) -> None:
    """Print what the endpoint is connected to (JSON: attachment, endpoint, health). Exit 0 serving, 1 not serving, 2 agent unreachable."""
    address = endpoint or _settings(config, exit_code=EXIT_UNREACHABLE).endpoint
    raise typer.Exit(show_status(address, sys.stdout, sys.stderr, timeout_s=timeout))


def _settings(config: Path | None, exit_code: int = 2, **overrides: object) -> VmAgentSettings:
    try:
        return load_settings(config, **overrides)
    except (SettingsError, ValueError) as error:  # pydantic's ValidationError is a ValueError
        _fail(f"bad settings: {error}", exit_code)


def _fail(message: str, code: int) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise typer.Exit(code)


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("agent").setLevel(logging.INFO if verbose else logging.WARNING)


def main() -> None:
    app()
