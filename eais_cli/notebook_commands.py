"""eais notebook create / start / stop / url: notebooks (CreateEaiJupyter, StartEaiJupyter, StopEaiJupyter)."""

from __future__ import annotations

from typing import Annotated

import typer
from alibabacloud_eais20190624 import models

from eais_cli.options import CredentialsFile, Endpoint, Output, Profile, Region, Session, Timeout, Wait, session
from eais_cli.output import OutputFormat, exits, print_json
from eais_cli.service import describe_one
from eais_cli.waiting import Goal, wait_for

NOTEBOOK_TYPE = "eais.ei-a6.2xlarge"
RUNNING = Goal("InUse", frozenset({"Pending", "Starting", "Available", "Attaching", "Stopped"}))
STOPPED = Goal("Stopped", frozenset({"InUse", "Stopping", "Available"}))

app = typer.Typer(help="Notebooks: a Jupyter server on one of your VMs with an accelerator attached.",
                  no_args_is_help=True)
Env = Annotated[list[str] | None, typer.Option("--env", help="KEY=VALUE for the server and its kernels (repeat)")]


@app.command()
@exits
def create(
    name: Annotated[str, typer.Option(help="2-128 characters, starting with a letter")] = "",
    vswitch: Annotated[str, typer.Option(help="vSwitch of the VM to run it on (default: the eais up file's)")] = "",
    security_group: Annotated[str, typer.Option(help="sg-…")] = "sg-default",
    env: Env = None,
    client_token: Annotated[str, typer.Option(help="retrying with the same token creates one notebook only")] = "",
    wait: Wait = False, timeout: Timeout = 300.0,
    profile: Profile = "", credentials: CredentialsFile = None, endpoint: Endpoint = "", region: Region = "",
    output: Output = OutputFormat.table,
) -> None:
    """Create a notebook (CreateEaiJupyter); prints its ID, with --wait its URL once it runs."""
    cli = session(profile, credentials, endpoint, region, output)
    request = models.CreateEaiJupyterRequest(
        region_id=cli.region, eais_type=NOTEBOOK_TYPE, eais_name=name or None, security_group_id=security_group,
        v_switch_id=vswitch or cli.creds.vswitch_id or None, client_token=client_token or None,
        environment_var=[models.CreateEaiJupyterRequestEnvironmentVar(key=k, value=v) for k, v in _pairs(env)] or None)
    instance_id = cli.call(lambda c: c.create_eai_jupyter(request)).body.elastic_accelerated_instance_id
    _report(cli, instance_id, RUNNING if wait else None, timeout)


@app.command()
@exits
def start(
    instance_id: str, wait: Wait = False, timeout: Timeout = 300.0,
    profile: Profile = "", credentials: CredentialsFile = None, endpoint: Endpoint = "", region: Region = "",
    output: Output = OutputFormat.table,
) -> None:
    """Start a stopped notebook (StartEaiJupyter); with --wait, until it runs, then its URL."""
    cli = session(profile, credentials, endpoint, region, output)
    cli.call(lambda c: c.start_eai_jupyter(models.StartEaiJupyterRequest(region_id=cli.region, instance_id=instance_id)))
    _report(cli, instance_id, RUNNING if wait else None, timeout)


@app.command()
@exits
def stop(
    instance_id: str, wait: Wait = False, timeout: Timeout = 120.0,
    profile: Profile = "", credentials: CredentialsFile = None, endpoint: Endpoint = "", region: Region = "",
    output: Output = OutputFormat.table,
) -> None:
    """Stop a notebook (StopEaiJupyter): its server stops and its worker is released; 1/5 of the price while stopped."""
    cli = session(profile, credentials, endpoint, region, output)
    cli.call(lambda c: c.stop_eai_jupyter(models.StopEaiJupyterRequest(region_id=cli.region, instance_id=instance_id)))
    _report(cli, instance_id, STOPPED if wait else None, timeout)


@app.command()
@exits
def url(
    instance_id: str,
    profile: Profile = "", credentials: CredentialsFile = None, endpoint: Endpoint = "", region: Region = "",
    output: Output = OutputFormat.table,
) -> None:
    """Print the notebook's URL with its token (DescribeEais JupyterUrl); empty unless it runs."""
    cli = session(profile, credentials, endpoint, region, output)
    _report(cli, instance_id, None, 0)


def _pairs(values: list[str] | None) -> list[tuple[str, str]]:
    pairs = []
    for value in values or []:
        key, sep, rest = value.partition("=")
        if not sep:
            raise typer.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--env")
        pairs.append((key, rest))
    return pairs


def _report(cli: Session, instance_id: str, goal: Goal | None, timeout_s: float) -> None:
    if goal is not None:
        wait_for(cli.client, cli.creds.endpoint, cli.region, instance_id, goal, timeout_s)
    found = cli.call(lambda c: describe_one(c, cli.region, instance_id))
    status, jupyter_url = (found.status, found.jupyter_url or "") if found else ("Released", "")
    if cli.json:
        print_json({"ElasticAcceleratedInstanceId": instance_id, "Status": status, "JupyterUrl": jupyter_url})
    elif goal is None and timeout_s:
        print(instance_id)
    else:
        print(f"{instance_id} {status} {jupyter_url}".rstrip())


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="notebook")
