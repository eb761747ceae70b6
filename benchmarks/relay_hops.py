"""What the channel's encryption costs: TensorFlow through two relay hops with and without TLS.

    python -m benchmarks.relay_hops      (make bench runs it after the data-plane benchmark)

Two processes relay like the VM agent and the node gateway do (agent.relay, agent.tls_stream),
with no agent logic around them: (a) TF straight to a worker, (p) two plain hops, (t) two hops
whose middle leg is TLS 1.3 with a certificate from an agent CA. Each relay runs in its own
process, as the agents do, so the interpreter lock is not shared between the hops.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.data_plane import free_port, run_client


def _serve(role: str, listen_port: int, upstream_port: int, certs: Path) -> None:
    from agent.gateway_tls import client_context, server_context
    from agent.relay import Relay, tune
    from agent.tls_stream import TlsStream

    listener = socket.create_server(("127.0.0.1", listen_port))
    print("ready", flush=True)
    while True:
        conn, _ = listener.accept()
        tune(conn)
        upstream = socket.create_connection(("127.0.0.1", upstream_port))
        tune(upstream)
        if role == "tls-in":
            stream = TlsStream(conn, server_context(*(certs.joinpath(n).read_text() for n in ("key", "cert", "ca"))),
                               server_side=True)
            stream.handshake()
            Relay(stream, upstream).start()
        elif role == "tls-out":
            stream = TlsStream(upstream, client_context(certs.joinpath("ca").read_text()), server_side=False,
                               server_hostname="127.0.0.1")
            stream.handshake()
            Relay(conn, stream).start()
        else:
            Relay(conn, upstream).start()


def _write_certs(directory: Path) -> None:
    from agent.gateway_tls import new_gateway_key
    from controller.agent_ca import load_or_create_agent_ca
    from controller.settings import ControllerSettings

    ca = load_or_create_agent_ca(ControllerSettings(db_url="sqlite:///unused.db", state_dir=directory / "ca-state"))
    key = new_gateway_key("bench")
    directory.joinpath("key").write_text(key.key_pem)
    directory.joinpath("cert").write_text(ca.sign_gateway(key.csr_pem, "127.0.0.1:1"))
    directory.joinpath("ca").write_text(ca.certificate_pem)


def _start(*args: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "benchmarks.relay_hops", *args], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    return process


def main() -> None:
    if len(sys.argv) > 1:  # a relay process: ROLE LISTEN UPSTREAM CERTDIR
        _serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
        return
    with tempfile.TemporaryDirectory(prefix="eais-hops-") as directory:
        certs = Path(directory)
        _write_certs(certs)
        worker_port, plain_far, plain_near, tls_far, tls_near = (free_port() for _ in range(5))
        processes = [subprocess.Popen([sys.executable, "-m", "benchmarks.plain_worker", str(worker_port)],
                                      stdout=subprocess.PIPE, text=True)]
        try:
            assert processes[0].stdout.readline().strip() == "ready"
            processes += [_start("plain", str(plain_far), str(worker_port), directory),
                          _start("plain", str(plain_near), str(plain_far), directory),
                          _start("tls-in", str(tls_far), str(worker_port), directory),
                          _start("tls-out", str(tls_near), str(tls_far), directory)]
            rows = {"(a) straight to the worker": run_client(f"127.0.0.1:{worker_port}"),
                    "(p) two plain relay hops": run_client(f"127.0.0.1:{plain_near}"),
                    "(t) two hops, TLS between": run_client(f"127.0.0.1:{tls_near}")}
        finally:
            for process in processes:
                process.kill()
    base = rows["(a) straight to the worker"]
    print(f"\n{'':30s}{'call p50':>10s}{'batch p50':>11s}{'MB/s':>8s}{'latency':>9s}{'throughput':>11s}")
    for name, row in rows.items():
        print(f"{name:30s}{row['call_p50_ms']:>8.2f}ms{row['batch_p50_ms']:>9.1f}ms{row['throughput_mb_s']:>8.0f}"
              f"{row['call_p50_ms'] / base['call_p50_ms']:>8.2f}x{row['throughput_mb_s'] / base['throughput_mb_s']:>10.2f}x")


if __name__ == "__main__":
    main()
