"""What remote_tf refuses before TensorFlow touches the endpoint, and how errors are named.

These run in the test process: every connect() here is refused by the checks, so no remote
context is ever created (one test proves it). The agent is a fake status responder; TensorFlow,
where it takes part, is real.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import remote_tf
from remote_tf import errors
from remote_tf.endpoint import DEFAULT_ENDPOINT, ENDPOINT_ENV, check_endpoint, resolve_endpoint
from tests.remote_tf.fake_agent import FakeAgentEndpoint

UNHEALTHY = {"state": "idle", "healthy": False, "status": "Available", "node_tf_version": "",
             "message": "no accelerator attached to i-xxx; status Available"}


def serving(node_tf_version: str) -> dict:
    return {"state": "serving", "healthy": True, "status": "InUse", "node_tf_version": node_tf_version,
            "message": "serving eais-1"}


@pytest.fixture(scope="module")
def tf() -> Any:
    """TensorFlow, imported by the first test that needs it: collection stays quick, so the scenario
    processes of the other remote_tf tests start (and import TensorFlow) at the same time."""
    import tensorflow

    return tensorflow


@pytest.fixture
def agent() -> Iterator[FakeAgentEndpoint]:
    endpoint = FakeAgentEndpoint(UNHEALTHY)  # nothing behind it: TensorFlow's calls get UNAVAILABLE
    yield endpoint
    endpoint.close()


def other_minor_version(version: str) -> str:
    major, minor, *_ = version.split(".")
    return f"{major}.{int(minor) + 1}.0"


def test_an_unhealthy_agent_makes_connect_raise_accelerator_unavailable_with_its_message(agent):
    with pytest.raises(remote_tf.AcceleratorUnavailable, match="no accelerator attached to i-xxx; status Available"):
        remote_tf.connect(agent.endpoint)


def test_a_node_on_another_tensorflow_minor_version_is_refused_naming_both_versions(tf, agent):
    node_version = other_minor_version(tf.__version__)
    agent.status = serving(node_version)
    with pytest.raises(remote_tf.VersionMismatch) as raised:
        remote_tf.connect(agent.endpoint)
    assert node_version in str(raised.value) and tf.__version__ in str(raised.value)
    assert (raised.value.local_version, raised.value.node_version) == (tf.__version__, node_version)


def test_another_patch_level_passes_the_version_check_and_reaches_the_tensorflow_probe(tf, agent):
    major, minor, *_ = tf.__version__.split(".")
    agent.status = serving(f"{major}.{minor}.99")
    with pytest.raises(remote_tf.AcceleratorUnavailable, match="did not serve a call .*UNAVAILABLE: serving eais-1"):
        remote_tf.connect(agent.endpoint, timeout_s=5.0)


def test_refused_connects_leave_tensorflow_local(tf, agent):
    with pytest.raises(remote_tf.AcceleratorUnavailable):
        remote_tf.connect(agent.endpoint)
    assert remote_tf.current_connection() is None
    from tensorflow.python.eager import context

    assert context.get_server_def() is None
    assert tf.constant(1.0).device.endswith("/device:CPU:0") and "/job:worker" not in tf.constant(1.0).device


def test_nothing_listening_raises_accelerator_unavailable_saying_what_to_check():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    with pytest.raises(remote_tf.AcceleratorUnavailable, match="eais-agent status") as raised:
        remote_tf.connect(f"127.0.0.1:{free_port}", timeout_s=2.0)
    assert f"127.0.0.1:{free_port}" in str(raised.value)


def test_an_attach_in_progress_is_waited_for_and_its_outcome_decides(tf, agent):
    agent.status = {**UNHEALTHY, "state": "attaching", "status": "Attaching",
                    "message": "instance eais-1 is Attaching to i-xxx; not ready yet"}
    threading.Timer(0.3, lambda: setattr(agent, "status", serving(tf.__version__))).start()
    started = time.monotonic()

    with pytest.raises(remote_tf.AcceleratorUnavailable, match="did not serve a call .*UNAVAILABLE: serving eais-1"):
        check_endpoint(agent.endpoint, local_tf_version=tf.__version__, timeout_s=5.0)  # serving now: TF is probed

    assert 0.3 <= time.monotonic() - started < 5.0


def test_an_attach_that_does_not_finish_in_time_is_refused_with_the_agents_message(tf, agent):
    agent.status = {**UNHEALTHY, "state": "attaching", "status": "Attaching",
                    "message": "instance eais-1 is Attaching to i-xxx; not ready yet"}

    with pytest.raises(remote_tf.AcceleratorUnavailable, match="is Attaching to i-xxx; not ready yet"):
        check_endpoint(agent.endpoint, local_tf_version=tf.__version__, timeout_s=0.5)


def test_session_target_makes_the_same_checks(tf, agent):
    with pytest.raises(remote_tf.AcceleratorUnavailable, match="no accelerator attached"):
        remote_tf.session_target(agent.endpoint)
    agent.status = serving(other_minor_version(tf.__version__))
    with pytest.raises(remote_tf.VersionMismatch):
        remote_tf.session_target(agent.endpoint)


def test_the_endpoint_comes_from_the_argument_then_the_environment_then_the_default(monkeypatch):
    monkeypatch.delenv(ENDPOINT_ENV, raising=False)
    assert resolve_endpoint() == DEFAULT_ENDPOINT == "127.0.0.1:8470"
    monkeypatch.setenv(ENDPOINT_ENV, "10.0.0.5:9000")
    assert resolve_endpoint() == "10.0.0.5:9000"
    assert resolve_endpoint("grpc://127.0.0.1:1234") == "127.0.0.1:1234"


def test_translate_errors_turns_a_lost_connection_into_accelerator_lost_with_the_agents_words(tf, agent):
    lost = pytest.raises(remote_tf.AcceleratorLost, match="Socket closed.*no accelerator attached to i-xxx")
    with lost as raised, remote_tf.translate_errors(agent.endpoint):
        raise tf.errors.UnavailableError(None, None, "Socket closed")
    assert isinstance(raised.value.__cause__, tf.errors.UnavailableError)


def test_translate_errors_says_to_reconnect_when_the_worker_forgot_our_context(tf, agent):
    forgotten = tf.errors.AbortedError(None, None, "Unable to find a context_id matching the specified one (42)")
    with pytest.raises(remote_tf.AcceleratorLost, match="context_id.*remote_tf.reconnect()"):
        with remote_tf.translate_errors(agent.endpoint):
            raise forgotten


def test_translate_errors_leaves_the_programs_own_errors_alone(tf, agent):
    with pytest.raises(tf.errors.InvalidArgumentError), remote_tf.translate_errors(agent.endpoint):
        raise tf.errors.InvalidArgumentError(None, None, "Input to reshape is a tensor with 3 values")


def test_every_error_has_its_own_code_and_a_place_in_the_drawn_tree():
    codes = [error.code for error in errors.ALL_ERRORS]
    assert len(set(codes)) == len(codes)
    for error in errors.ALL_ERRORS[1:]:
        assert issubclass(error, remote_tf.RemoteTFError)
        assert f"{error.__name__}" in errors.__doc__ and error.code in errors.__doc__


def test_liveness_timings_refuse_pings_that_the_workers_policing_would_punish():
    with pytest.raises(ValueError, match="must exceed TensorFlow's KeepAlive period"):
        remote_tf.LivenessTimings(keep_alive_secs=20, ping_after_silence_ms=6000)
    timings = remote_tf.LivenessTimings()
    assert timings.keep_alive_period_ms < timings.ping_after_silence_ms
    assert timings.worst_case_detection_s <= 10


def test_importing_remote_tf_does_not_import_tensorflow():
    code = "import sys, remote_tf; remote_tf.AcceleratorLost; print('tensorflow' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    answer = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert answer.stdout.strip() == "False"
