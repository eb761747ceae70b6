"""One side of the data-plane benchmarks: TensorFlow calls against several targets, interleaved, figures as JSON.

    python -m benchmarks.tensor_client --target local
    python -m benchmarks.tensor_client --target 127.0.0.1:8470 --target 127.0.0.1:2222 --rounds 3

Per-call latency: a small tf.function (a 16x16 matmul) whose result comes back to the client.
Tensor throughput: a 32x224x224x3 float32 batch (19.3 MB) sent to the device and reduced there.
With several targets the process visits them in turn, ``--rounds`` times (``remote_tf.reconnect``
between them), so that a busy moment of the machine falls on all of them alike; it prints one JSON
line per target, with the percentiles over every round and each round's p99. One process, because
TensorFlow keeps one remote context per process and importing it takes seconds.
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


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _device_for(target: str, first: bool) -> str:
    if target == "local":
        return "/job:localhost/replica:0/task:0/device:CPU:0"
    import remote_tf

    return (remote_tf.connect(target) if first else remote_tf.reconnect(target)).device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", action="append", required=True,
                        help="'local' or HOST:PORT of a TensorFlow worker endpoint; repeat for several")
    parser.add_argument("--calls", type=int, default=1000, help="calls per target and round")
    parser.add_argument("--batches", type=int, default=10, help="batches per target and round")
    parser.add_argument("--rounds", type=int, default=1)
    options = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    small = np.random.default_rng(1).standard_normal((16, 16)).astype("float32")
    batch = np.random.default_rng(2).standard_normal(BATCH_SHAPE).astype("float32")
    calls: dict[str, list[list[float]]] = {target: [] for target in options.target}
    batches: dict[str, list[float]] = {target: [] for target in options.target}
    remote_seen = False
    for _ in range(options.rounds):
        for target in options.target:
            device = _device_for(target, first=not remote_seen)
            remote_seen = remote_seen or target != "local"
            with tf.device(device):
                matmul = tf.function(lambda x: tf.matmul(x, x))
                reduce = tf.function(lambda x: tf.reduce_sum(x))
                for _ in range(20):  # trace and warm both functions and the channel
                    matmul(small).numpy()
                reduce(batch).numpy()
                calls[target].append(_times_ms(lambda: matmul(small).numpy(), options.calls))
                batches[target] += _times_ms(lambda: reduce(batch).numpy(), options.batches)
    for target in options.target:
        every = [ms for round_ in calls[target] for ms in round_]
        batch_p50 = statistics.median(batches[target])
        print(json.dumps({
            "target": target, "calls": len(every),
            "call_p50_ms": statistics.median(every), "call_p90_ms": percentile(every, 0.90),
            "call_p99_ms": percentile(every, 0.99), "call_max_ms": max(every),
            "call_p99_ms_rounds": [percentile(round_, 0.99) for round_ in calls[target]],
            "batch_p50_ms": batch_p50, "throughput_mb_s": batch.nbytes / 1e6 / (batch_p50 / 1000),
        }), flush=True)


if __name__ == "__main__":
    main()
