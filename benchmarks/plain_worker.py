"""A bare TensorFlow worker on a loopback port: the data-plane benchmark's direct baseline (a).

    python -m benchmarks.plain_worker PORT      # prints "ready" once it serves; runs until killed
"""

from __future__ import annotations

import sys
import threading


def main() -> None:
    import tensorflow as tf

    port = int(sys.argv[1])
    cluster = tf.train.ClusterSpec({"worker": [f"localhost:{port}"]})
    tf.distribute.Server(cluster, job_name="worker", task_index=0, protocol="grpc", start=True)
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
