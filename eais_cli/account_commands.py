"""eais metrics / bill / history / regions / whoami: what the account can read beyond the instance list."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from alibabacloud_eais20190624 import models

from eais_cli.options import CredentialsFile, Endpoint, Output, Profile, Region, session
from eais_cli.output import OutputFormat, exits, print_json, print_table
from eais_cli.service import tenant_get

METRICS = ("GpuCoreUsage", "GpuMemoryUsage", "CpuCoreUsage", "MemoryUsage")
SPANS = {"m": 60, "h": 3600, "d": 86_400}


def _seconds(text: str) -> int:
    if len(text) > 1 and text[:-1].isdigit() and text[-1] in SPANS:
        return int(text[:-1]) * SPANS[text[-1]]
    raise typer.BadParameter(f"{text!r} is not a span such as 30m, 1h or 1d", param_hint="--since")


@exits
def metrics(
    instance_id: str,
    metric: Annotated[list[str] | None, typer.Option(help=f"one of {', '.join(METRICS)} (default: all four)")] = None,
    since: Annotated[str, typer.Option(help="how far back: 30m, 1h, 24h, 1d")] = "1h",
    step: Annotated[str, typer.Option(help="one point per step: 1m, 5m, 1h")] = "5m",
    profile: Profile = "", credentials: CredentialsFile = None, endpoint: Endpoint = "", region: Region = "",
    output: Output = OutputFormat.table,
) -> None:
    """Usage of an instance's accelerator and worker over time, in percent (GetInstanceMetrics)."""
    cli = session(profile, credentials, endpoint, region, output)
    end = int(time.time())
    start = end - _seconds(since)
    series: dict[str, dict[str, str]] = {}
    for name in metric or METRICS:
        body = cli.call(lambda c, name=name: c.get_instance_metrics(models.GetInstanceMetricsRequest(
            instance_id=instance_id, metric_type=name, start_time=str(start), end_time=str(end), time_step=step))).body
        series[name] = {m.time: m.value for pod in body.pod_metrics for m in pod.metrics}
    if cli.json:
        print_json({"InstanceId": instance_id, "Metrics": {name: [{"Time": t, "Value": v} for t, v in points.items()]
                                                          for name, points in series.items()}})
        return
    times = sorted({t for points in series.values() for t in points}, key=int)
    rows = [(time.strftime("%Y-%m-%d %H:%M", time.gmtime(int(t) / 1000)), *(series[n].get(t, "") for n in series))
            for t in times]
    print_table(f"{instance_id}: mean per {step} over the last {since} (UTC)", ["Time", *(f"{n} %" for n in series)],
                rows, empty=f"No usage samples for {instance_id} in the last {since}: usage is reported while it is attached.")


@exits
def bill(
    profile: Profile = "", credentials: CredentialsFile = None, endpoint: Endpoint = "", region: Region = "",
    output: Output = OutputFormat.table,
) -> None:
    """The account's balance, the running hour's charges and the closed hours (GET /tenant/v1/bill, signed)."""
    cli = session(profile, credentials, endpoint, region, output)
    body = cli.call(lambda c: tenant_get(c, "/tenant/v1/bill", "DescribeTenantBill"))
    if cli.json:
        print_json(body)
        return
    debt = "  IN DEBT: creating instances is refused until it is topped up" if body["InDebt"] else ""
    print(f"{body['AccountName']} ({body['AccountId']}): balance {body['Balance']} CNY{debt}")
    print(f"running hour, not yet charged: {body['RunningCharges']['Amount']} CNY")

    def rows(items: list[dict]) -> list[tuple]:
        return [(i["HourStart"], i["InstanceId"], i["InstanceType"], f"{i['BilledSeconds']:.0f}", i["Amount"]) for i in items]

    columns = ["Hour (UTC)", "Instance", "Type", "Seconds", "Amount (CNY)"]
    print_table("Running hour", columns, rows(body["RunningCharges"]["Items"]), empty="Nothing billed in the running hour.")
    print_table("Closed hours, newest first", columns, rows(body["Items"]), empty="No closed hour billed yet.")


@exits
def history(
    instance_id: str,
    profile: Profile = "", credentials: CredentialsFile = None, endpoint: Endpoint = "", region: Region = "",
    output: Output = OutputFormat.table,
) -> None:
    """Every status change of an instance, with its reason (GET /tenant/v1/instances/ID/history, signed)."""
    cli = session(profile, credentials, endpoint, region, output)
    body = cli.call(lambda c: tenant_get(c, f"/tenant/v1/instances/{instance_id}/history", "DescribeInstanceHistory"))
    if cli.json:
        print_json(body)
        return
    print_table(instance_id, ["Time", "From", "To", "Event", "Reason"],
                [(t["Time"], t["FromStatus"] or "-", t["ToStatus"], t["Event"], t["Reason"]) for t in body["Transitions"]])


@exits
def regions(
    profile: Profile = "", credentials: CredentialsFile = None, endpoint: Endpoint = "", region: Region = "",
    output: Output = OutputFormat.table,
) -> None:
    """The regions the service offers (DescribeRegions)."""
    cli = session(profile, credentials, endpoint, region, output)
    body = cli.call(lambda c: c.describe_regions(models.DescribeRegionsRequest())).body
    if cli.json:
        print_json(body.to_map())
        return
    print_table(None, ["Region", "Name", "Endpoint"], [(r.region_id, r.local_name, r.region_endpoint) for r in body.regions.region])


@exits
def whoami(
    profile: Profile = "", credentials: CredentialsFile = None, endpoint: Endpoint = "", region: Region = "",
    output: Output = OutputFormat.table,
) -> None:
    """Which credentials, endpoint and region the other commands would use, and where they came from (no secret)."""
    cli = session(profile, credentials, endpoint, region, output)
    facts = {"AccessKeyId": cli.creds.access_key_id, "Source": cli.creds.source, "Endpoint": cli.creds.endpoint,
             "RegionId": cli.region, "ClientInstanceId": cli.creds.client_instance_id}
    if cli.json:
        print_json(facts)
    else:
        print_table(None, ["", ""], list(facts.items()))


def register(app: typer.Typer) -> None:
    for command in (metrics, bill, history, regions, whoami):
        app.command()(command)
