"""Scenario: ordinary TensorFlow work, first locally, then through remote_tf on a real worker.

Run in its own process (TensorFlow keeps one remote context per process) from an empty working
directory; prints one JSON object that tests/remote_tf/test_remote_execution.py asserts on. The
worker runs in another directory, so a relative path it can read is not the one this process reads.
"""

from __future__ import annotations

import faulthandler
import json
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor

from tests.remote_tf.fake_agent import FakeAgentProcess
from tests.remote_tf.worker_process import start_worker

HANG_REPORT_AFTER_S = 150

BATCH = 64
FEATURES = 4


def main() -> None:
    faulthandler.dump_traceback_later(HANG_REPORT_AFTER_S, exit=True)  # a hang shows its stacks
    booting = ThreadPoolExecutor(1).submit(start_worker, cwd=tempfile.mkdtemp(prefix="worker-cwd-"))
    import numpy as np
    import tensorflow as tf

    import remote_tf

    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, FEATURES)).astype("float32")
    y = (x @ np.arange(1, FEATURES + 1, dtype="float32"))[:, None]
    initial_weights = build_model(tf).get_weights()
    local = {"keras": train_and_predict(tf, initial_weights, x, y), "saved_model": save_model(tf, "model", x)}
    double = tf.function(lambda value: value * 2)
    local["function_traced_before_connect"] = {"device": double(tf.constant(21.0)).device}

    worker = booting.result()
    agent = FakeAgentProcess(healthy_status(tf.__version__), forward_to=worker.endpoint)
    connection = remote_tf.connect(agent.endpoint)
    remote = {
        "connection": {"device": connection.device, "agent_status": connection.agent_status,
                       "connect_again_is_same": remote_tf.connect(agent.endpoint) is connection},
        "keras": train_and_predict(tf, initial_weights, x, y),
        "function_traced_before_connect": traced_result(double(tf.constant(21.0))),
        "cpu_seconds": cpu_seconds_of_a_heavy_function(tf, worker.pid),
        "saved_model": load_remotely(tf, remote_tf, x),
        "other_thread": devices_on_another_thread(tf, connection),
        "tf1_session": tf1_session(tf, remote_tf, agent.endpoint),
        "disconnect": disconnect_and_reconnect(tf, remote_tf),
    }
    print(json.dumps({"local": local, "remote": remote}), flush=True)
    worker.kill()
    agent.close()
    os._exit(0)  # TensorFlow's remote context can stall interpreter shutdown


def healthy_status(tf_version: str) -> dict:
    return {"state": "serving", "healthy": True, "status": "InUse", "instance_id": "eais-test",
            "node_tf_version": tf_version, "message": "serving eais-test"}


def traced_result(tensor) -> dict:
    return {"device": tensor.device, "value": float(tensor)}


def build_model(tf):
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input((FEATURES,)), tf.keras.layers.Dense(16, activation="relu"),
                                 tf.keras.layers.Dense(1)])
    model.compile(optimizer=tf.keras.optimizers.SGD(0.01), loss="mse")
    return model


def train_and_predict(tf, initial_weights, x, y) -> dict:
    model = build_model(tf)  # built under the default device: local before connect(), remote after
    model.set_weights(initial_weights)
    before = model.predict(x, verbose=0)
    history = model.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    return {"predict": before.tolist(), "loss": history.history["loss"],
            "predict_after_fit": model.predict(x, verbose=0).tolist(),
            "weights": [w.tolist() for w in model.get_weights()],
            "variable_devices": sorted({v.value.device for v in model.weights}),
            "call_device": model(x).device}


def cpu_seconds_of_a_heavy_function(tf, worker_pid: int) -> dict:
    import psutil

    @tf.function
    def chained_matmuls(matrix, times):
        return tf.reduce_sum(tf.foldl(lambda acc, _: tf.tanh(acc @ matrix), tf.range(times), initializer=matrix))

    matrix = tf.random.stateless_uniform([512, 512], seed=[1, 2]) / 512
    chained_matmuls(matrix, tf.constant(1)).numpy()  # trace and warm up outside the measurement
    worker, this = psutil.Process(worker_pid), psutil.Process()
    worker_before, this_before = sum(worker.cpu_times()[:2]), sum(this.cpu_times()[:2])
    result = chained_matmuls(matrix, tf.constant(150))
    device = result.device
    result.numpy()
    return {"worker": sum(worker.cpu_times()[:2]) - worker_before, "client": sum(this.cpu_times()[:2]) - this_before,
            "result_device": device}


def save_model(tf, path: str, x) -> dict:
    class Affine(tf.Module):
        def __init__(self):
            self.kernel = tf.Variable(tf.random.stateless_normal([FEATURES, 3], seed=[3, 4]))

        @tf.function(input_signature=[tf.TensorSpec([None, FEATURES], tf.float32)])
        def __call__(self, inputs):
            return {"scores": tf.nn.softmax(inputs @ self.kernel)}

    module = Affine()
    tf.saved_model.save(module, path)  # relative: this process's working directory
    return {"scores": module(x)["scores"].numpy().tolist()}


def load_remotely(tf, remote_tf, x) -> dict:
    try:  # what plain tf.saved_model.load does: the worker reads the files, from its own directory
        tf.saved_model.load("model")
        worker_side_read = "loaded"
    except Exception as error:  # noqa: BLE001 - the class name is the result
        worker_side_read = type(error).__name__
    imported = remote_tf.load_saved_model("model")
    scores = imported.signatures["serving_default"](inputs=tf.constant(x))["scores"]
    return {"scores": scores.numpy().tolist(), "output_device": scores.device,
            "variable_device": imported.kernel.device, "plain_load_without_io_device": worker_side_read}


def devices_on_another_thread(tf, connection) -> dict:
    devices = {}

    def work() -> None:
        devices["without_scope"] = tf.constant(1.0).device
        with connection.device_scope():
            devices["with_device_scope"] = tf.constant(1.0).device

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return devices


def tf1_session(tf, remote_tf, endpoint: str) -> dict:
    graph = tf.Graph()
    with graph.as_default():
        inputs = tf.compat.v1.placeholder(tf.float32, [2, 2])
        product = tf.matmul(inputs, inputs) + 1
        target = remote_tf.session_target(endpoint)
        with tf.compat.v1.Session(target, graph=graph) as session:
            devices = [device.name for device in session.list_devices()]
            value = session.run(product, {inputs: [[1, 2], [3, 4]]})
    return {"target": target, "value": value.tolist(), "devices": devices}


def disconnect_and_reconnect(tf, remote_tf) -> dict:
    remote_tf.disconnect()
    after_disconnect = {"device": tf.constant(1.0).device,
                        "devices": [device.name for device in tf.config.list_logical_devices()],
                        "current": remote_tf.current_connection() is None}
    connection = remote_tf.reconnect()  # the endpoint of the previous connection
    value = tf.reduce_sum(tf.ones([3, 3]))
    return {"after_disconnect": after_disconnect, "reconnected_device": connection.device,
            "reconnected_value_device": value.device, "reconnected_value": float(value)}


if __name__ == "__main__":
    main()
