"""eais: the user CLI. `eais up` runs a whole eais on this machine; the other commands drive an
EAIS API with the official SDK (alibabacloud_eais20190624), using the credentials file `eais up` writes."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from alibabacloud_eais20190624 import models

from eais_cli.local_cluster import ClusterOptions, LocalCluster
from eais_cli.say import say
from eais_cli.sdk import client_from_credentials, describe

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
DEFAULT_DATA_DIR = Path(".eais-up")
Credentials = Annotated[Path, typer.Option("--credentials", help="credentials JSON written by `eais up`")]


@app.command()
def up(
    data_dir: Annotated[Path, typer.Option(help="database, keys, logs and credentials.json")] = DEFAULT_DATA_DIR,
    api_port: Annotated[int, typer.Option(help="EAIS API port")] = 8080,
    grpc_port: Annotated[int, typer.Option(help="port the agents reach the controller on")] = 50051,
    tf_port: Annotated[int, typer.Option(help="local TensorFlow endpoint of this host's VM agent")] = 8470,
    gateway_port: Annotated[int, typer.Option(help="the node agent's TLS gateway")] = 50052,
    backend: Annotated[str, typer.Option(help="node backend: auto (GPU if NVML finds one), gpu or cpu")] = "auto",
    node_metrics_port: Annotated[int, typer.Option(help="Prometheus /metrics of the node agent on 127.0.0.1 (0: none)")] = 9471,
    agent_metrics_port: Annotated[int, typer.Option(help="Prometheus /metrics of the VM agent on 127.0.0.1 (0: none)")] = 9472,
    demo: Annotated[bool, typer.Option(help="once ready, create, attach, run a Keras model, detach and bill")] = False,
) -> None:
    """Start a controller, a node agent and a VM agent for this host; print `ready`; stop on Ctrl-C.

    Afterwards, in another shell: `eais instances`, `eais create`, `eais attach ID`, or any app with
    `import remote_tf; remote_tf.connect()` (endpoint 127.0.0.1:TF_PORT).
    """
    from eais_cli.demo import DemoFailed, run_demo  # imports the SDK models only when asked for

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    cluster = LocalCluster(ClusterOptions(data_dir.resolve(), api_port, grpc_port, tf_port, gateway_port, backend,
                                          node_metrics_port=node_metrics_port, agent_metrics_port=agent_metrics_port))
    code = 0
    try:
        cluster.start()
        cluster.wait_until_ready()
        creds = cluster.credentials
        say(f"credentials: {data_dir / 'credentials.json'} (region {creds['RegionId']}, "
            f"this host is client instance {creds['ClientInstanceId']}, vSwitch {creds['VSwitchId']})")
        for name, port in (("node agent", node_metrics_port), ("VM agent", agent_metrics_port)):
            if port:
                say(f"metrics: {name} http://127.0.0.1:{port}/metrics")
        say(f"ready: EAIS API http://{cluster.endpoint}/  TensorFlow endpoint {cluster.tf_endpoint}  (Ctrl-C stops)")
        if demo:
            run_demo(cluster)
            say("demo: done; the cluster stays up until Ctrl-C")
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    except (DemoFailed, RuntimeError, TimeoutError, OSError) as error:
        say(f"error: {error}")
        code = 1
    finally:
        say("stopping ...")
        cluster.stop()
        say("stopped")
    raise typer.Exit(code)


@app.command()
def instances(credentials: Credentials = DEFAULT_DATA_DIR / "credentials.json") -> None:
    """List the account's EAIS instances (DescribeEais) as JSON lines."""
    creds = _load(credentials)
    body = client_from_credentials(creds).describe_eais(models.DescribeEaisRequest(region_id=creds["RegionId"])).body
    for item in body.instances.instance:
        print(json.dumps({"InstanceId": item.elastic_accelerated_instance_id, "Status": item.status,
                          "Type": item.instance_type, "Client": item.client_instance_id,
                          "Description": item.description}))


@app.command()
def create(
    instance_type: Annotated[str, typer.Argument(help="e.g. eais.ei-a6.xlarge")] = "eais.ei-a6.xlarge",
    name: Annotated[str, typer.Option(help="instance name")] = "eais-cli",
    credentials: Credentials = DEFAULT_DATA_DIR / "credentials.json",
) -> None:
    """CreateEai in the credentials' region and vSwitch; prints the new instance id."""
    creds = _load(credentials)
    request = models.CreateEaiRequest(region_id=creds["RegionId"], instance_type=instance_type, instance_name=name,
                                      v_switch_id=creds.get("VSwitchId"))
    print(client_from_credentials(creds).create_eai(request).body.elastic_accelerated_instance_id)


@app.command()
def attach(
    instance_id: str,
    client_instance_id: Annotated[str, typer.Option("--client", help="default: this host")] = "",
    credentials: Credentials = DEFAULT_DATA_DIR / "credentials.json",
) -> None:
    """AttachEai to a client VM (this host by default)."""
    creds = _load(credentials)
    client = client_from_credentials(creds)
    client.attach_eai(models.AttachEaiRequest(region_id=creds["RegionId"], elastic_accelerated_instance_id=instance_id,
                                              client_instance_id=client_instance_id or creds["ClientInstanceId"]))
    print(describe(client, creds["RegionId"], instance_id).status)


@app.command()
def detach(instance_id: str, credentials: Credentials = DEFAULT_DATA_DIR / "credentials.json") -> None:
    """DetachEai."""
    creds = _load(credentials)
    client = client_from_credentials(creds)
    client.detach_eai(models.DetachEaiRequest(region_id=creds["RegionId"], elastic_accelerated_instance_id=instance_id))
    print(describe(client, creds["RegionId"], instance_id).status)


@app.command()
def delete(instance_id: str, force: bool = False, credentials: Credentials = DEFAULT_DATA_DIR / "credentials.json") -> None:
    """DeleteEai (releases the instance; --force for one that is not Available)."""
    creds = _load(credentials)
    client_from_credentials(creds).delete_eai(models.DeleteEaiRequest(
        region_id=creds["RegionId"], elastic_accelerated_instance_id=instance_id, force=force))


def _load(path: Path) -> dict[str, str]:
    try:
        return json.loads(path.read_text())
    except OSError as error:
        raise typer.BadParameter(f"cannot read {path}: {error.strerror}; start `eais up` first or pass --credentials") from None


def main() -> None:
    app()
