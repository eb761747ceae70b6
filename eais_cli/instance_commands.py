"""eais instances / create / attach / detach / release / tag: the EAIS actions, through the official v3 SDK."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from alibabacloud_eais20190624 import models

from eais_cli.options import CredentialsFile, Endpoint, Output, Profile, Region, Session, Timeout, Wait, session
from eais_cli.output import OutputFormat, exits, print_json, print_table
from eais_cli.service import describe_one
from eais_cli.waiting import ATTACHED, CREATED, DETACHED, Goal, wait_for

Tags = Annotated[list[str] | None, typer.Option("--tag", help="KEY=VALUE (repeat for several)")]


def _tags(pairs: list[str] | None, model: type) -> list:
    found = []
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--tag")
        found.append(model(key=key, value=value))
    return found


def _created_at(millis: str) -> str:
    return datetime.fromtimestamp(int(millis) / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S") if millis.isdigit() else ""


@exits
def instances(
    status: Annotated[str, typer.Option(help="Pending, Starting, Available, Attaching, InUse, Detaching, Unavailable; "
                                             "notebooks: Stopping, Stopped; EI: Creating, Bindable, Bound")] = "",
    instance_type: Annotated[str, typer.Option("--type", help="e.g. eais.ei-a6.xlarge")] = "",
    name: Annotated[str, typer.Option(help="instance name; * matches anything")] = "",
    tag: Tags = None,
    page: Annotated[int, typer.Option(min=1)] = 1,
    page_size: Annotated[int, typer.Option(min=1, max=200)] = 50,
    profile: Profile = "", credentials: CredentialsFile = None, endpoint: Endpoint = "", region: Region = "",
    output: Output = OutputFormat.table,
) -> None:
    """List the account's instances in the region (DescribeEais)."""
    cli = session(profile, credentials, endpoint, region, output)
    request = models.DescribeEaisRequest(region_id=cli.region, status=status or None, instance_type=instance_type or None,
                                         instance_name=name or None, page_number=page, page_size=page_size,
                                         tag=_tags(tag, models.DescribeEaisRequestTag) or None)
    body = cli.call(lambda c: c.describe_eais(request)).body
    if cli.json:
        print_json(body.to_map())
        return
    rows = [(i.elastic_accelerated_instance_id, i.instance_name, i.status, i.instance_type, i.client_instance_id,
             i.zone_id, " ".join(f"{t.tag_key}={t.tag_value}" for t in i.tags.tag), _created_at(i.creation_time))
            for i in body.instances.instance]
    first = (body.page_number - 1) * body.page_size
    title = f"{cli.region}: {first + 1}-{first + len(rows)} of {body.total_count}" if rows else None
    print_table(title, ["Instance", "Name", "Status", "Type", "Client", "Zone", "Tags", "Created"], rows,
                empty=f"No instances in {cli.region}{' match' if status or instance_type or name or tag else ''}.")


@exits
def create(
    instance_type: Annotated[str, typer.Argument(help="e.g. eais.ei-a6.xlarge")] = "eais.ei-a6.xlarge",
    name: Annotated[str, typer.Option(help="2-128 characters, starting with a letter")] = "",
    vswitch: Annotated[str, typer.Option(help="vSwitch (default: the eais up file's)")] = "",
    tag: Tags = None,
    resource_group: Annotated[str, typer.Option(help="rg-…")] = "",
    client_token: Annotated[str, typer.Option(help="retrying with the same token creates one instance only")] = "",
    wait: Wait = False, timeout: Timeout = 300.0,
    profile: Profile = "", credentials: CredentialsFile = None, endpoint: Endpoint = "", region: Region = "",
    output: Output = OutputFormat.table,
) -> None:
    """Create an instance (CreateEai); prints its ID. With --wait, until it is Available."""
    cli = session(profile, credentials, endpoint, region, output)
    request = models.CreateEaiRequest(
        region_id=cli.region, instance_type=instance_type, instance_name=name or None,
        v_switch_id=vswitch or cli.creds.vswitch_id or None, resource_group_id=resource_group or None,
        client_token=client_token or None, tag=_tags(tag, models.CreateEaiRequestTag) or None)
    instance_id = cli.call(lambda c: c.create_eai(request)).body.elastic_accelerated_instance_id
    report_instance(cli, instance_id, CREATED if wait else None, timeout)


@exits
def attach(
    instance_id: str,
    client: Annotated[str, typer.Option("--client", help="client instance (VM); default: this host (eais up)")] = "",
    wait: Wait = False, timeout: Timeout = 120.0,
    profile: Profile = "", credentials: CredentialsFile = None, endpoint: Endpoint = "", region: Region = "",
    output: Output = OutputFormat.table,
) -> None:
    """Attach an instance to a VM (AttachEai). With --wait, until it is InUse (or why not)."""
    cli = session(profile, credentials, endpoint, region, output)
    vm = client or cli.creds.client_instance_id
    if not vm:
        raise typer.BadParameter("name the VM with --client (no eais up file says which VM this host is)")
    cli.call(lambda c: c.attach_eai(models.AttachEaiRequest(
        region_id=cli.region, elastic_accelerated_instance_id=instance_id, client_instance_id=vm)))
    report_instance(cli, instance_id, ATTACHED if wait else None, timeout)


@exits
def detach(
    instance_id: str, wait: Wait = False, timeout: Timeout = 120.0,
    profile: Profile = "", credentials: CredentialsFile = None, endpoint: Endpoint = "", region: Region = "",
    output: Output = OutputFormat.table,
) -> None:
    """Detach an instance from its VM (DetachEai). With --wait, until it is Available."""
    cli = session(profile, credentials, endpoint, region, output)
    cli.call(lambda c: c.detach_eai(models.DetachEaiRequest(region_id=cli.region,
                                                            elastic_accelerated_instance_id=instance_id)))
    report_instance(cli, instance_id, DETACHED if wait else None, timeout)


@exits
def release(
    instance_id: str,
    force: Annotated[bool, typer.Option(help="also while Starting, Attaching, Detaching or Stopping (abandons that operation)")] = False,
    profile: Profile = "", credentials: CredentialsFile = None, endpoint: Endpoint = "", region: Region = "",
    output: Output = OutputFormat.table,
) -> None:
    """Release an instance (DeleteEai): billing stops. Without --force only when Available, InUse, Unavailable or Stopped."""
    cli = session(profile, credentials, endpoint, region, output)
    body = cli.call(lambda c: c.delete_eai(models.DeleteEaiRequest(
        region_id=cli.region, elastic_accelerated_instance_id=instance_id, force=force))).body
    if cli.json:
        print_json({"ElasticAcceleratedInstanceId": instance_id, "Status": "Released", "RequestId": body.request_id})
    else:
        print(f"{instance_id} released")


@exits
def tag(
    instance_id: str,
    tags: Annotated[list[str] | None, typer.Argument(help="KEY=VALUE to set")] = None,
    remove: Annotated[list[str] | None, typer.Option("--remove", help="tag key to remove (repeat for several)")] = None,
    profile: Profile = "", credentials: CredentialsFile = None, endpoint: Endpoint = "", region: Region = "",
    output: Output = OutputFormat.table,
) -> None:
    """Set tags (TagResources) or --remove them (UntagResources); prints the instance's tags."""
    cli = session(profile, credentials, endpoint, region, output)
    if tags:
        cli.call(lambda c: c.tag_resources(models.TagResourcesRequest(
            region_id=cli.region, resource_type="instance", resource_id=[instance_id],
            tag=_tags(tags, models.TagResourcesRequestTag))))
    if remove:
        cli.call(lambda c: c.untag_resources(models.UntagResourcesRequest(
            region_id=cli.region, resource_type="instance", resource_id=[instance_id], tag_key=list(remove))))
    listed = cli.call(lambda c: c.list_tag_resources(models.ListTagResourcesRequest(
        region_id=cli.region, resource_type="instance", resource_id=[instance_id]))).body
    pairs = [(t.tag_key, t.tag_value) for t in listed.tag_resources]
    if cli.json:
        print_json({"ElasticAcceleratedInstanceId": instance_id, "Tags": [{"TagKey": k, "TagValue": v} for k, v in pairs]})
    else:
        print_table(None, ["Key", "Value"], pairs, empty=f"{instance_id} has no tags.")


def report_instance(cli: Session, instance_id: str, goal: Goal | None, timeout_s: float) -> None:
    """Print the instance's ID (and status); with a goal, wait for it first."""
    seconds = wait_for(cli.client, cli.creds.endpoint, cli.region, instance_id, goal, timeout_s) if goal else None
    if cli.json:
        found = cli.call(lambda c: describe_one(c, cli.region, instance_id))
        print_json({"ElasticAcceleratedInstanceId": instance_id, "Status": found.status if found else "Released",
                    **({"WaitedSeconds": round(seconds, 2)} if seconds is not None else {})})
    elif goal:
        print(f"{instance_id} {goal.target} after {seconds:.1f} s")
    else:
        print(instance_id)


def register(app: typer.Typer) -> None:
    for command in (instances, create, attach, detach, release, tag):
        app.command()(command)
    app.command("delete", hidden=True, help="Old name of `eais release`.")(release)
