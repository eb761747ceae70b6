"""``eais up``: a whole eais on this machine — controller, one node agent, one VM agent for this host.

The controller runs in this process (SQLite under the data directory); the node agent and the
VM agent run as child processes, exactly the programs an operator installs (``eais-node run``,
``eais-agent run``), so their relays do not share this process's interpreter lock. Their output
goes to ``DATA_DIR/logs/``. The first start creates a ``default`` account and writes its keys to
``DATA_DIR/credentials.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from agent.endpoint_status import EndpointUnreachable, query_endpoint_status
from agent.node.agent import WARM_POOL_LINE
from controller.accounts import create_account
from controller.agent_ca import agent_ca_certificate_path
from controller.context import ControllerContext
from controller.key_store import node_token
from controller.server import RunningController, start_controller
from controller.settings import load_settings
from controller.tables import ClientInstance, Node
from eais_cli.say import say
from sqlmodel import select

REGION, ZONE = "cn-hangzhou", "cn-hangzhou-a"
VPC, VSWITCH = "vpc-local", "vsw-local"


@dataclass
class ClusterOptions:
    data_dir: Path
    api_port: int = 8080
    grpc_port: int = 50051
    tf_port: int = 8470
    gateway_port: int = 50052
    backend: str = "auto"
    ready_timeout_s: float = 120.0


@dataclass
class LocalCluster:
    options: ClusterOptions
    ctx: ControllerContext | None = None
    controller: RunningController | None = None
    credentials: dict[str, str] = field(default_factory=dict)
    children: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.controller.api_port}" if self.controller else ""

    @property
    def tf_endpoint(self) -> str:
        return f"127.0.0.1:{self.options.tf_port}"

    @property
    def agent_ca_file(self) -> Path:
        """What both agents trust for the TLS link to the controller (also for any agent added by hand)."""
        return agent_ca_certificate_path(self.ctx.settings)

    def start(self) -> None:
        data = self.options.data_dir
        (data / "logs").mkdir(parents=True, exist_ok=True)
        settings = load_settings(db_url=f"sqlite:///{data}/controller.db", state_dir=data / "state",
                                 api_port=self.options.api_port, grpc_port=self.options.grpc_port)
        say(f"controller: opening {settings.db_url}")
        self.ctx = ControllerContext.open(settings)
        self.controller = start_controller(self.ctx)
        self.controller.start_api_in_thread()
        self.credentials = self._credentials(data / "credentials.json")
        say(f"controller: EAIS API http://{self.endpoint}/, agents on 127.0.0.1:{self.controller.grpc_port} "
            f"(TLS; agent CA {self.agent_ca_file})")
        self.children["node"] = self._spawn("node", self._node_command())
        self.children["agent"] = self._spawn("agent", self._agent_command())

    def wait_until_ready(self) -> None:
        """Return once the node and this host's VM are registered, the TF endpoint answers and the node
        has a warm TensorFlow worker (so the first attach takes a fraction of a second, not an import)."""
        deadline = time.monotonic() + self.options.ready_timeout_s
        announced = False
        while time.monotonic() < deadline:
            self._check_children()
            if self._registered() and self._endpoint_answers():
                if self._pool_warm():
                    return
                if not announced:
                    say("node: registered; waiting for its warm TensorFlow worker (one import, a few seconds)")
                    announced = True
            time.sleep(0.2)
        raise TimeoutError(f"the agents did not come up within {self.options.ready_timeout_s:.0f}s; "
                           f"see {self.options.data_dir / 'logs'}")

    def stop(self) -> None:
        for name, child in self.children.items():
            if child.poll() is None:
                child.terminate()
        for name, child in self.children.items():
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                say(f"{name} agent did not stop in 15 s; killing it")
                child.kill()
        if self.controller is not None:
            self.controller.stop()

    def _credentials(self, path: Path) -> dict[str, str]:
        if path.exists():
            saved = json.loads(path.read_text())
        else:
            made = create_account(self.ctx, "default", balance=Decimal("1000"), real_name_verified=True).as_json()
            saved = {**made, "RegionId": REGION, "ClientInstanceId": this_host_instance_id()}
            say(f"controller: created account 'default' ({made['AccountId']}) with a balance of 1000 CNY")
        saved.update(Endpoint=self.endpoint, TfEndpoint=self.tf_endpoint, VSwitchId=VSWITCH)
        path.write_text(json.dumps(saved, indent=2) + "\n")
        path.chmod(0o600)
        return saved

    def _node_command(self) -> list[str]:
        isolation = "netns" if os.geteuid() == 0 else "none"
        if isolation == "none":
            say("node: not running as root, so workers cannot get their own network namespaces; "
                "their ports listen on all interfaces (fine on a laptop, not on a shared network)")
        return [
            _script("eais-node"), "run", "--controller", f"127.0.0.1:{self.controller.grpc_port}",
            "--controller-ca", str(self.agent_ca_file),
            "--node-token-file", str(self.ctx.settings.resolved_state_dir() / "node.token"),
            "--backend", self.options.backend, "--gateway-port", str(self.options.gateway_port),
            "--advertise", "127.0.0.1", "--worker-isolation", isolation, "--region", REGION, "--zone", ZONE,
            "--node-id", f"local-{socket.gethostname()}"[:64], "--state-dir", str(self.options.data_dir / "node"),
        ]

    def _agent_command(self) -> list[str]:
        return [
            _script("eais-agent"), "run", "--controller", f"127.0.0.1:{self.controller.grpc_port}",
            "--controller-ca", str(self.agent_ca_file),
            "--credentials-file", str(self.options.data_dir / "credentials.json"),
            "--endpoint", self.tf_endpoint, "--region", REGION, "--zone", ZONE,
            "--vpc-id", VPC, "--vswitch-id", VSWITCH, "--state-dir", str(self.options.data_dir / "agent"),
        ]

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        log = open(self.options.data_dir / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        say(f"{name}: starting ({' '.join(command[:2])}); log {log.name}")
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def _check_children(self) -> None:
        for name, child in self.children.items():
            if child.poll() is not None:
                tail = _tail(self.options.data_dir / "logs" / f"{name}.log")
                raise RuntimeError(f"the {name} agent exited with code {child.returncode}:\n{tail}")

    def _registered(self) -> bool:
        with self.ctx.db.read() as session:
            node = session.exec(select(Node).where(Node.online.is_(True))).first()
            vm = session.get(ClientInstance, self.credentials["ClientInstanceId"])
        return node is not None and vm is not None and vm.online

    def _pool_warm(self) -> bool:
        log = self.options.data_dir / "logs" / "node.log"
        try:
            return WARM_POOL_LINE in log.read_text(errors="replace")
        except OSError:
            return False

    def _endpoint_answers(self) -> bool:
        try:
            return query_endpoint_status(self.tf_endpoint, timeout_s=1.0) is not None
        except EndpointUnreachable:
            return False


def this_host_instance_id() -> str:
    """A stable client instance id for this machine (from /etc/machine-id, else the host name)."""
    try:
        seed = Path("/etc/machine-id").read_text().strip()
    except OSError:
        seed = socket.gethostname()
    return "i-local" + hashlib.sha256(seed.encode()).hexdigest()[:12]


def _script(name: str) -> str:
    """The console script installed beside this interpreter (the venv's), else on PATH."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
