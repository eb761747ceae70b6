"""The committed generated code is exactly what ``protos/generate.py`` produces from the protos."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_committed_generated_code_matches_a_fresh_generation(tmp_path: Path) -> None:
    # protoc runs in its own process: grpc_tools' embedded protobuf runtime can crash a process
    # that has already loaded the other protobuf and gRPC libraries the rest of the suite uses
    done = subprocess.run([sys.executable, str(REPO_ROOT / "protos" / "generate.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    written = [Path(line.removeprefix("wrote ")) for line in done.stdout.splitlines() if line.startswith("wrote ")]
    assert written, done.stdout

    for fresh in written:
        relative = fresh.relative_to(tmp_path)
        committed = REPO_ROOT / relative
        assert committed.exists(), f"{relative} is not committed; run python protos/generate.py"
        assert committed.read_text() == fresh.read_text(), (
            f"{relative} differs from a fresh generation; run python protos/generate.py and commit the result"
        )


def test_generated_grpc_module_imports_the_messages_by_package_path() -> None:
    text = (REPO_ROOT / "protos/eais/v1/agents_pb2_grpc.py").read_text()

    assert "from protos.eais.v1 import agents_pb2" in text
