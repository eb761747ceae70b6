"""eais ei create / attach / start / stop / detach / release: the EI family (CreateEaisEi …), through the v3 SDK.

An EI instance is bound to a VM (attach) before it runs anything; start gives the VM a worker and stop
takes it away again (Bound, billed at the reserve share) while the instance stays bound.
"""

from __future__ import annotations

from typing import Annotated

import typer
from alibabacloud_eais20190624 import models

from eais_cli.instance_commands import report_instance
from eais_cli.options import CredentialsFile, Endpoint, Output, Profile, Region, Timeout, Wait, session
from eais_cli.output import OutputFormat, exits, print_json
from eais_cli.waiting import Goal

# DescribeEais shows a Start in flight as Bound and a Stop in flight as InUse (README, "The EI family").
EI_CREATED = Goal("Bindable", frozenset({"Pending", "Creating"}))
EI_STARTED = Goal("InUse", frozenset({"Bound"}))
EI_STOPPED = Goal("Bound", frozenset({"InUse"}))

app = typer.Typer(help="EI instances (Category ei): create, attach (bind) to a VM, start, stop, detach, release.",
                  no_args_is_help=True)


@app.command()
@exits
def create(
    instance_type: Annotated[str, typer.Argument(help="e.g. eais.ei-a6.xlarge")] = "eais.ei-a6.xlarge",
    name: Annotated[str, typer.Option(help="2-128 characters, starting with a letter")] = "",
    vswitch: Annotated[str, typer.Option(help="vSwitch (default: the eais up file's)")] = "",
    security_group: Annotated[str, typer.Option(help="security group ID (sg-…)")] = "sg-default",
    client_token: Annotated[str, typer.Option(help="retrying with the same token creates one instance only")] = "",
    wait: Wait = False, timeout: Timeout = 300.0,
    profile: Profile = "", credentials: CredentialsFile = None, endpoint: Endpoint = "", region: Region = "",
    output: Output = OutputFormat.table,
) -> None:
    """Create an EI instance (CreateEaisEi); prints its ID. With --wait, until it is Bindable."""
    cli = session(profile, credentials, endpoint, region, output)
    request = models.CreateEaisEiRequest(
        region_id=cli.region, instance_type=instance_type, instance_name=name or None, security_group_id=security_group,
        v_switch_id=vswitch or cli.creds.vswitch_id or None, client_token=client_token or None)
    instance_id = cli.call(lambda c: c.create_eais_ei(request)).body.ei_instance_id
    report_instance(cli, instance_id, EI_CREATED if wait else None, timeout)


@app.command()
@exits
def attach(
    instance_id: Annotated[str, typer.Argument(help="EI instance; leave out to take the oldest Bindable one")] = "",
    instance_type: Annotated[str, typer.Option("--type", help="without an ID: only instances of this type")] = "",
    client: Annotated[str, typer.Option("--client", help="client instance (VM); default: this host (eais up)")] = "",
    profile: Profile = "", credentials: CredentialsFile = None, endpoint: Endpoint = "", region: Region = "",
    output: Output = OutputFormat.table,
) -> None:
    """Bind an EI instance to a VM (AttachEaisEi): Bound at once; nothing runs until `eais ei start`."""
    cli = session(profile, credentials, endpoint, region, output)
    vm = client or cli.creds.client_instance_id
    if not vm:
        raise typer.BadParameter("name the VM with --client (no eais up file says which VM this host is)")
    body = cli.call(lambda c: c.attach_eais_ei(models.AttachEaisEiRequest(
        region_id=cli.region, client_instance_id=vm, ei_instance_id=instance_id or None,
        ei_instance_type=instance_type or None))).body
    report_instance(cli, body.ei_instance_id, None, 0)


@app.command()
@exits
def start(
    instance_id: str, wait: Wait = False, timeout: Timeout = 120.0,
    profile: Profile = "", credentials: CredentialsFile = None, endpoint: Endpoint = "", region: Region = "",
    output: Output = OutputFormat.table,
) -> None:
    """Start a Bound EI instance's worker (StartEaisEi). With --wait, until it is InUse (or why not)."""
    cli = session(profile, credentials, endpoint, region, output)
    cli.call(lambda c: c.start_eais_ei(models.StartEaisEiRequest(region_id=cli.region, ei_instance_id=instance_id)))
    report_instance(cli, instance_id, EI_STARTED if wait else None, timeout)


@app.command()
@exits
def stop(
    instance_id: str, wait: Wait = False, timeout: Timeout = 120.0,
    profile: Profile = "", credentials: CredentialsFile = None, endpoint: Endpoint = "", region: Region = "",
    output: Output = OutputFormat.table,
) -> None:
    """Stop an InUse EI instance's worker (StopEaisEi); it stays bound. With --wait, until it is Bound."""
    cli = session(profile, credentials, endpoint, region, output)
    cli.call(lambda c: c.stop_eais_ei(models.StopEaisEiRequest(region_id=cli.region, ei_instance_id=instance_id)))
    report_instance(cli, instance_id, EI_STOPPED if wait else None, timeout)


@app.command()
@exits
def detach(
    instance_id: str,
    profile: Profile = "", credentials: CredentialsFile = None, endpoint: Endpoint = "", region: Region = "",
    output: Output = OutputFormat.table,
) -> None:
    """Unbind a Bound EI instance from its VM (DetachEaisEi): Bindable at once."""
    cli = session(profile, credentials, endpoint, region, output)
    cli.call(lambda c: c.detach_eais_ei(models.DetachEaisEiRequest(region_id=cli.region, ei_instance_id=instance_id)))
    report_instance(cli, instance_id, None, 0)


@app.command()
@exits
def release(
    instance_id: str,
    force: Annotated[bool, typer.Option(help="also when not Bindable (unbinds it and stops its worker)")] = False,
    profile: Profile = "", credentials: CredentialsFile = None, endpoint: Endpoint = "", region: Region = "",
    output: Output = OutputFormat.table,
) -> None:
    """Release an EI instance (DeleteEaisEi): billing stops. Without --force only when Bindable."""
    cli = session(profile, credentials, endpoint, region, output)
    body = cli.call(lambda c: c.delete_eais_ei(models.DeleteEaisEiRequest(
        region_id=cli.region, ei_instance_id=instance_id, force=force))).body
    if cli.json:
        print_json({"EiInstanceId": instance_id, "Status": "Released", "RequestId": body.request_id})
    else:
        print(f"{instance_id} released")


def register(main: typer.Typer) -> None:
    main.add_typer(app, name="ei")
