"""A real TensorFlow client for the VM agent's tests, kept running so TensorFlow is imported once.

``python -m tests.vm_agent.tf_client_main`` prints ``READY``, then answers one JSON line per JSON
command line on stdin:

    {"op": "session", "target": "grpc://HOST:PORT", "graph": "matmul" | "dequeue", "timeout_ms": N}
    {"op": "eager", "endpoint": "HOST:PORT"}      remote eager: connect_to_host, matmul on the worker
    {"op": "local"}                               the same matmul on this process's CPU

Answers are {"value": ..., "device": ..., "seconds": ...} or {"error": "UnavailableError",
"message": ..., "seconds": ...}.
"""

import json
import sys
import time

import tensorflow as tf

MATRIX = [[1.0, 2.0], [3.0, 4.0]]
WORKER_CPU = "/job:worker/replica:0/task:0/device:CPU:0"


def session(target: str, graph: str, timeout_ms: int) -> dict:
    with tf.Graph().as_default():
        if graph == "dequeue":  # blocks on the worker until the queue is closed: a call in flight
            fetch = tf.queue.FIFOQueue(1, tf.float32).dequeue()
        else:
            fetch = tf.matmul(tf.constant(MATRIX), tf.constant(MATRIX))
        config = tf.compat.v1.ConfigProto(operation_timeout_in_ms=timeout_ms)
        with tf.compat.v1.Session(target, config=config) as sess:
            return {"value": sess.run(fetch).tolist()}


def eager(endpoint: str) -> dict:
    tf.config.experimental_connect_to_host(endpoint, job_name="worker")
    with tf.device(WORKER_CPU):
        product = tf.matmul(tf.constant(MATRIX), tf.constant(MATRIX))
    return {"value": product.numpy().tolist(), "device": product.device}


def local() -> dict:
    with tf.device("/job:localhost/replica:0/task:0/device:CPU:0"):
        product = tf.matmul(tf.constant(MATRIX), tf.constant(MATRIX))
    return {"value": product.numpy().tolist(), "device": product.device}


def serve() -> None:
    print("READY", flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        started = time.monotonic()
        try:
            if command["op"] == "session":
                result = session(command["target"], command.get("graph", "matmul"), command.get("timeout_ms", 20000))
            elif command["op"] == "eager":
                result = eager(command["endpoint"])
            else:
                result = local()
        except tf.errors.OpError as error:
            result = {"error": type(error).__name__, "message": error.message}
        result["seconds"] = round(time.monotonic() - started, 3)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    serve()
