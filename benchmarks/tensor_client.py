"""One side of the data-plane benchmark: TensorFlow calls against one target, figures as one JSON line.

    python -m benchmarks.tensor_client --target local
    python -m benchmarks.tensor_client --target 127.0.0.1:8470     # a worker, or a VM agent endpoint

Per-call latency: a small tf.function (a 16x16 matmul) whose result comes back to the client.
Tensor throughput: a 32x224x224x3 float32 batch (19.3 MB) sent to the device and reduced there.
Runs in its own process because TensorFlow keeps one remote context per process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

BATCH_SHAPE = (32, 224, 224, 3)


def _times_ms(call, repeats: int) -> list[float]:  # noqa: ANN001
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", required=True, help="'local' or HOST:PORT of a TensorFlow worker endpoint")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--batches", type=int, default=20)
    options = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    device = "/job:localhost/replica:0/task:0/device:CPU:0"
    if options.target != "local":
        import remote_tf
        device = remote_tf.connect(options.target).device
    small = np.random.default_rng(1).standard_normal((16, 16)).astype("float32")
    batch = np.random.default_rng(2).standard_normal(BATCH_SHAPE).astype("float32")
    with tf.device(device):
        matmul = tf.function(lambda x: tf.matmul(x, x))
        reduce = tf.function(lambda x: tf.reduce_sum(x))
        for _ in range(5):  # trace and warm both functions and the channel
            matmul(small).numpy()
            reduce(batch).numpy()
        calls = _times_ms(lambda: matmul(small).numpy(), options.calls)
        batches = _times_ms(lambda: reduce(batch).numpy(), options.batches)
    batch_mb = batch.nbytes / 1e6
    print(json.dumps({
        "target": options.target, "device": device,
        "call_p50_ms": statistics.median(calls), "call_p99_ms": _percentile(calls, 0.99),
        "batch_p50_ms": statistics.median(batches), "batch_p99_ms": _percentile(batches, 0.99),
        "throughput_mb_s": batch_mb / (statistics.median(batches) / 1000), "batch_mb": batch_mb,
    }), flush=True)


if __name__ == "__main__":
    main()
