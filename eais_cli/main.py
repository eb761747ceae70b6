"""eais: the user CLI. `eais up` runs a whole eais on this machine; the other commands drive an EAIS API
with the official SDK (alibabacloud_eais20190624).

Credentials, first found:
1. --profile NAME (of ~/.aliyun/config.json) or --credentials FILE (eais up's);
2. ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET;
3. the current profile of ~/.aliyun/config.json (ALIBABA_CLOUD_PROFILE picks one);
4. the file `eais up` writes (.eais-up/credentials.json).
`eais whoami` shows which is used.

Tables by default; --output json for scripts. Exit codes: 0 done; 1 refused by the service (its EAIS code is printed);
2 bad command line; 3 no usable credentials; 4 --wait ended in another status; 5 --wait timed out; 6 endpoint unreachable.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from eais_cli import account_commands, ei_commands, instance_commands, notebook_commands
from eais_cli.say import say

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
DEFAULT_DATA_DIR = Path(".eais-up")


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
    from eais_cli.local_cluster import ClusterOptions, LocalCluster  # the controller and agents: only for `up`

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
        say(f"console: http://{cluster.endpoint}/console/ (sign in with the AccessKey in credentials.json; "
            f"operators at /console/operator/ with the token in {cluster.ctx.settings.resolved_state_dir() / 'admin.token'})")
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


instance_commands.register(app)
ei_commands.register(app)
account_commands.register(app)
notebook_commands.register(app)


def main() -> None:
    app()
