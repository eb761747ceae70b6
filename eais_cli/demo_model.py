"""Run a small Keras model on the attached accelerator and locally; print one JSON line comparing them.

Runs in its own process (``python -m eais_cli.demo_model --endpoint HOST:PORT``) because
TensorFlow keeps one remote context per process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def _timed_ms(call, repeats: int) -> list[float]:  # noqa: ANN001 - any zero-argument callable
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--repeats", type=int, default=20)
    options = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    import remote_tf

    tf.keras.utils.set_random_seed(7)
    model = tf.keras.Sequential([tf.keras.Input((64,)), tf.keras.layers.Dense(128, activation="relu"),
                                 tf.keras.layers.Dense(10, activation="softmax")])
    batch = np.random.default_rng(7).standard_normal((32, 64)).astype("float32")
    local = model(batch).numpy()
    weights = model.get_weights()

    connection = remote_tf.connect(options.endpoint)
    with tf.device(connection.device):
        remote_model = tf.keras.models.clone_model(model)
        remote_model.set_weights(weights)
        predict = tf.function(remote_model)
        remote = predict(batch)
        device = remote.device
        remote = remote.numpy()
        latencies = _timed_ms(lambda: predict(batch).numpy(), options.repeats)
    print(json.dumps({
        "device": device, "max_abs_diff": float(np.max(np.abs(remote - local))),
        "equal": bool(np.allclose(remote, local, rtol=1e-6, atol=1e-6)),
        "p50_ms": statistics.median(latencies), "max_ms": max(latencies),
    }), flush=True)


if __name__ == "__main__":
    main()
