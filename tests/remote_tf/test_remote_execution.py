"""Ordinary TensorFlow work through remote_tf on a real worker behind an agent-like relay.

The numbers come from tests/remote_tf/scenarios/models_on_remote.py, which computes everything
locally first, then again after ``remote_tf.connect()``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

WORKER_CPU = "/job:worker/replica:0/task:0/device:CPU:0"
LOCAL_CPU = "/job:localhost/replica:0/task:0/device:CPU:0"


@pytest.fixture(scope="module")
def run(scenarios: dict) -> dict[str, Any]:
    return scenarios["models_on_remote"].result()


def assert_same_numbers(remote: Any, local: Any) -> None:
    np.testing.assert_allclose(np.asarray(remote), np.asarray(local), rtol=1e-6, atol=1e-7)


def test_connect_makes_the_worker_the_default_device_and_returns_the_agents_status(run):
    connection = run["remote"]["connection"]
    assert connection["device"] == WORKER_CPU  # the worker has no GPU here
    assert connection["agent_status"]["state"] == "serving"


def test_connect_again_to_the_same_endpoint_returns_the_same_connection(run):
    assert run["remote"]["connection"]["connect_again_is_same"] is True


def test_a_function_traced_before_connect_runs_on_the_worker_afterwards(run):
    assert run["local"]["function_traced_before_connect"]["device"] == LOCAL_CPU
    assert run["remote"]["function_traced_before_connect"] == {"device": WORKER_CPU, "value": 42.0}


def test_keras_predict_and_fit_on_the_remote_device_match_local_results(run):
    remote, local = run["remote"]["keras"], run["local"]["keras"]
    assert_same_numbers(remote["predict"], local["predict"])
    assert_same_numbers(remote["loss"], local["loss"])
    assert_same_numbers(remote["predict_after_fit"], local["predict_after_fit"])
    for remote_weights, local_weights in zip(remote["weights"], local["weights"], strict=True):
        assert_same_numbers(remote_weights, local_weights)


def test_keras_variables_and_outputs_live_on_the_worker(run):
    assert run["local"]["keras"]["variable_devices"] == [LOCAL_CPU]
    assert run["remote"]["keras"]["variable_devices"] == [WORKER_CPU]
    assert run["remote"]["keras"]["call_device"] == WORKER_CPU


def test_the_worker_process_does_the_computation(run):
    cpu = run["remote"]["cpu_seconds"]
    assert cpu["result_device"] == WORKER_CPU
    assert cpu["worker"] > 0.1
    assert cpu["client"] < cpu["worker"] / 4


def test_saved_model_from_this_vms_disk_runs_remotely_with_local_numbers(run):
    remote = run["remote"]["saved_model"]
    assert remote["variable_device"] == WORKER_CPU
    assert remote["output_device"] == WORKER_CPU
    assert_same_numbers(remote["scores"], run["local"]["saved_model"]["scores"])


def test_without_the_local_io_device_the_worker_would_read_the_files_itself(run):
    # The worker runs in another directory: the relative path exists only for the client.
    assert run["remote"]["saved_model"]["plain_load_without_io_device"] == "FileNotFoundError"


def test_other_threads_run_locally_unless_they_enter_the_connections_device_scope(run):
    assert run["remote"]["other_thread"] == {"without_scope": LOCAL_CPU, "with_device_scope": WORKER_CPU}


def test_tf1_session_on_session_target_runs_its_graph_on_the_worker(run):
    session = run["remote"]["tf1_session"]
    assert session["target"].startswith("grpc://127.0.0.1:")
    assert session["devices"] == [WORKER_CPU]
    assert session["value"] == [[8.0, 11.0], [16.0, 23.0]]


def test_disconnect_goes_back_to_the_local_cpu_and_reconnect_joins_again(run):
    result = run["remote"]["disconnect"]
    assert result["after_disconnect"] == {"device": LOCAL_CPU, "devices": ["/device:CPU:0"], "current": True}
    assert result["reconnected_device"] == WORKER_CPU
    assert result["reconnected_value_device"] == WORKER_CPU
    assert result["reconnected_value"] == 9.0
