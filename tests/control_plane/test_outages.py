"""The controller away, or its disk full: attachments that keep working stay InUse, nothing accepted is lost.

Real processes on SQLite: ``eais-controller serve`` (SIGKILLed, restarted), simulated agents on the
real agent link. The outage lasts 130 s, longer than gRPC's default reconnect backoff grows and
than a heartbeat period plus grace (42 s), so it covers the 60 s outage too.
"""

from __future__ import annotations

import errno
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alibabacloud_eais20190624 import models as m

from controller.settings import LifecycleSettings
from tests.control_plane.cluster import REGION, TYPE, Cluster, assert_chain, eventually, status, transitions

OUTAGE_S = 130.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(f"sqlite:///{tmp_path}/controller.db", tmp_path)
    yield cluster
    cluster.stop()


def _attach(cluster: Cluster, instance_id: str, vm_id: str) -> None:
    cluster.client().attach_eai(m.AttachEaiRequest(region_id=REGION, elastic_accelerated_instance_id=instance_id,
                                                   client_instance_id=vm_id))
    eventually(lambda: status(cluster.client(), instance_id) == "InUse", 10, f"{instance_id} InUse")


@pytest.mark.slow
def test_after_a_130_s_outage_agents_are_back_within_5_s_and_the_attachment_stayed_in_use(cluster: Cluster) -> None:
    cluster.start()
    node, vm = cluster.node("node-1", via=[0]), cluster.vm("i-out0001", via=[0])
    cluster.run(node, vm)
    instance_id = cluster.create()
    _attach(cluster, instance_id, "i-out0001")
    controller = cluster.controllers[0]

    controller.kill()
    time.sleep(OUTAGE_S)
    controller.start()
    ready = time.monotonic()

    eventually(lambda: all(a.last_beat_at > ready and a.last_desired_at > ready for a in (node, vm)), 15,
               "both agents beat and follow the restarted controller")
    back_s = max(max(a.last_beat_at, a.last_desired_at) for a in (node, vm)) - ready
    print(f"agents back {back_s:.1f}s after the controller answered again")
    assert back_s <= 5
    time.sleep(LifecycleSettings().agent_absence_s + 6)  # past the new term's grace, a few reconcile passes
    log = transitions(cluster.db_url, instance_id)
    assert_chain(log)
    assert log[-1] == ("Attaching", "InUse", "attach_ready"), log  # InUse throughout: billed without a gap
    assert status(cluster.client(), instance_id) == "InUse"


FAST_AGENTS = """
[lifecycle]
heartbeat_interval_s = 1.0
heartbeat_jitter_s = 0.5
heartbeat_grace_s = 2.0
"""
FULL_FOR_S = 15.0  # four times what an agent may be silent with FAST_AGENTS


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC
    return filler


def test_a_full_disk_refuses_writes_with_a_clear_code_keeps_reads_and_attachments_and_recovers(
        small_disk: Path, tmp_path: Path) -> None:
    (tmp_path / "controller.toml").write_text(FAST_AGENTS)
    cluster = Cluster(f"sqlite:///{small_disk}/controller.db", tmp_path,
                      serve_args=("--config", str(tmp_path / "controller.toml")))
    try:
        cluster.start()
        node, vm = cluster.node("node-1", via=[0], slices=3), cluster.vm("i-full0001", via=[0])
        cluster.run(node, vm)
        instance_id = cluster.create()
        _attach(cluster, instance_id, "i-full0001")
        failed_beats = vm.beats.failed

        filler = _fill(small_disk)
        refused = eventually(lambda: _create_refusal(cluster), 20, "CreateEai refused on the full disk", poll_s=0.2)
        full_since = time.monotonic()
        while time.monotonic() - full_since < FULL_FOR_S:
            assert status(cluster.client(), instance_id) == "InUse"  # reads answer, the attachment holds
            time.sleep(1)
        filler.unlink()

        assert (refused.code, refused.statusCode) == ("ServiceUnavailable.StorageFull", 503)
        assert "no space left" in refused.message
        eventually(lambda: _create_refusal(cluster) is None, 20, "CreateEai works again once there is room")
        time.sleep(LifecycleSettings(**_fast()).agent_absence_s + 3)
        log = transitions(cluster.db_url, instance_id)
        assert_chain(log)
        assert log[-1] == ("Attaching", "InUse", "attach_ready"), log
        assert vm.beats.failed == failed_beats  # every heartbeat was answered, full disk or not
    finally:
        cluster.stop()


def _fast() -> dict[str, float]:
    return {"heartbeat_interval_s": 1.0, "heartbeat_jitter_s": 0.5, "heartbeat_grace_s": 2.0}


def _create_refusal(cluster: Cluster):
    """The error of one CreateEai (None when it was accepted)."""
    try:
        cluster.client().create_eai(m.CreateEaiRequest(region_id=REGION, instance_type=TYPE))
    except Exception as error:  # noqa: BLE001
        return error
    return None

