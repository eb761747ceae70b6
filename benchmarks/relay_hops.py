"""Where the channel's latency goes: TensorFlow through two relay hops, Python's and HAProxy's, with and without TLS.

    python -m benchmarks.relay_hops [--rounds 3] [--calls 1000]      (make bench runs it)

Two processes relay like the VM agent and the node gateway do, with no agent logic around them,
each in its own process as the agents are (so the hops do not share an interpreter lock):

    (a)  TF straight to a worker
    (p)  two plain hops, Python (agent.relay: a thread per direction, blocking sockets)
    (t)  the same with TLS 1.3 between the hops (agent.tls_stream, a certificate from an agent CA)
    (h)  two plain hops, HAProxy (tcp mode, one thread), if ``haproxy`` is installed
    (ht) the same with TLS 1.3 between the hops, HAProxy terminating and originating it

One TensorFlow client visits all of them in turn, ``--rounds`` times, so a busy moment of the
machine falls on all alike; the table gives the call percentiles over every round, the range of
the per-round p99, and each row against (a).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.data_plane import free_port, run_clients


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
    directory.joinpath("cert+key").write_text(directory.joinpath("cert").read_text() + key.key_pem)


def _start(*args: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "benchmarks.relay_hops", *args], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    return process


def _haproxy(listen_port: int, upstream_port: int, certs: Path, tls: str) -> subprocess.Popen:
    """One HAProxy hop: ``tls`` is "", "in" (terminates TLS 1.3) or "out" (originates it, verifying the CA)."""
    bind_tls = f" ssl crt {certs / 'cert+key'} ssl-min-ver TLSv1.3" if tls == "in" else ""
    server_tls = f" ssl verify required ca-file {certs / 'ca'} ssl-min-ver TLSv1.3 sni str(127.0.0.1)" \
        if tls == "out" else ""
    config = certs / f"haproxy-{listen_port}.cfg"
    config.write_text(f"""global
    nbthread 1
    tune.ssl.default-dh-param 2048
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
frontend hop
    bind 127.0.0.1:{listen_port}{bind_tls}
    default_backend next
backend next
    server upstream 127.0.0.1:{upstream_port}{server_tls}
""")
    process = subprocess.Popen(["haproxy", "-db", "-f", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    _wait_listening(listen_port)
    return process


def _wait_listening(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def main() -> None:
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):  # a relay process: ROLE LISTEN UPSTREAM CERTDIR
        _serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=1000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="eais-hops-") as directory:
        certs = Path(directory)
        _write_certs(certs)
        worker = free_port()
        processes = [subprocess.Popen([sys.executable, "-m", "benchmarks.plain_worker", str(worker)],
                                      stdout=subprocess.PIPE, text=True)]
        try:
            assert processes[0].stdout.readline().strip() == "ready"
            rows = {"(a) straight to the worker": f"127.0.0.1:{worker}"}
            for name, (far_role, near_role) in {"(p) two hops, Python": ("plain", "plain"),
                                                "(t) two hops, Python, TLS between": ("tls-in", "tls-out")}.items():
                far, near = free_port(), free_port()
                processes += [_start(far_role, str(far), str(worker), directory),
                              _start(near_role, str(near), str(far), directory)]
                rows[name] = f"127.0.0.1:{near}"
            if shutil.which("haproxy"):
                for name, (far_tls, near_tls) in {"(h) two hops, HAProxy": ("", ""),
                                                  "(ht) two hops, HAProxy, TLS between": ("in", "out")}.items():
                    far, near = free_port(), free_port()
                    processes += [_haproxy(far, worker, certs, far_tls), _haproxy(near, far, certs, near_tls)]
                    rows[name] = f"127.0.0.1:{near}"
            else:
                print("relay hops: haproxy is not installed (apt-get install haproxy); its rows are left out")
            measured = run_clients(list(rows.values()), rounds=options.rounds, calls=options.calls)
        finally:
            for process in processes:
                process.kill()
    print_table({name: measured[target] for name, target in rows.items()}, base="(a) straight to the worker")


def print_table(rows: dict[str, dict], base: str) -> None:
    direct = rows[base]
    print(f"\n{'':38s}{'call p50':>9s}{'p90':>8s}{'p99':>8s}{'p99 per round':>20s}{'MB/s':>7s}"
          f"{'p50':>7s}{'p99':>7s}")
    for name, row in rows.items():
        per_round = "-".join(f"{ms:.1f}" for ms in (min(row["call_p99_ms_rounds"]), max(row["call_p99_ms_rounds"])))
        print(f"{name:38s}{row['call_p50_ms']:>7.2f}ms{row['call_p90_ms']:>6.2f}ms{row['call_p99_ms']:>6.2f}ms"
              f"{per_round:>18s}ms{row['throughput_mb_s']:>7.0f}{row['call_p50_ms'] / direct['call_p50_ms']:>6.2f}x"
              f"{row['call_p99_ms'] / direct['call_p99_ms']:>6.2f}x")


if __name__ == "__main__":
    main()
