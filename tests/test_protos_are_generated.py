"""The committed generated code is exactly what ``protos/generate.py`` produces from the protos."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _generator():
    spec = importlib.util.spec_from_file_location("protos_generate", REPO_ROOT / "protos" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_generated_code_matches_a_fresh_generation(tmp_path: Path) -> None:
    generator = _generator()

    written = generator.generate(tmp_path)

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
