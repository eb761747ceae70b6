"""A TensorFlow app on the VM for the fault tests: one JSON line per event on stdout.

    python tests/faults/tf_app.py loop SECONDS [KEEP_ALIVE_SECS]   small remote calls, 10 a second
    python tests/faults/tf_app.py long SECONDS                     one remote call that lasts SECONDS

Both connect with ``remote_tf.connect()`` (endpoint from EAIS_TF_ENDPOINT) and print
``{"event": "connected"}``. ``loop`` prints every call (``at``: wall clock, ``seconds``, ``ok`` or
``error`` with ``message``); after an :class:`AcceleratorLost` that says to reconnect, it calls
``remote_tf.reconnect()`` twice a second until that works, printing each attempt. ``long`` prints
the outcome of its one call.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import tensorflow as tf

import remote_tf

SMALL = np.arange(16 * 16, dtype="float32").reshape(16, 16) / 256


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def timed(call) -> dict:  # noqa: ANN001
    started = time.monotonic()
    at = time.time()
    try:
        with remote_tf.translate_errors():
            call()
        return {"at": at, "seconds": time.monotonic() - started, "ok": True}
    except remote_tf.RemoteTFError as error:
        return {"at": at, "seconds": time.monotonic() - started, "ok": False, "error": type(error).__name__,
                "message": str(error)}


def sleep_on_worker(seconds: tf.Tensor) -> tf.Tensor:
    """A remote wait that burns no CPU (SleepDataset sleeps on both of its GetNext calls)."""
    from tensorflow.python.data.experimental.ops import testing

    pause = tf.cast(seconds * 1e6 / 2, tf.int64)
    steps = tf.data.Dataset.range(1).apply(testing.sleep(pause))
    return steps.reduce(tf.constant(0, tf.int64), lambda total, step: total + step)


def loop(seconds: float) -> None:
    matmul = tf.function(lambda x: tf.matmul(x, x))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        outcome = timed(lambda: matmul(tf.constant(SMALL)).numpy())
        say(event="call", **outcome)
        if not outcome["ok"] and "reconnect()" in outcome["message"] and "context" in outcome["message"]:
            reconnect_until_it_works(end)
        time.sleep(0.1)


def reconnect_until_it_works(end: float) -> None:
    while time.monotonic() < end:
        started = time.monotonic()
        try:
            remote_tf.reconnect(timeout_s=2.0)
            say(event="reconnect", ok=True, seconds=time.monotonic() - started)
            return
        except remote_tf.RemoteTFError as error:
            say(event="reconnect", ok=False, seconds=time.monotonic() - started, message=str(error))
        time.sleep(0.5)


def main() -> None:
    mode, seconds = sys.argv[1], float(sys.argv[2])
    keep_alive = int(sys.argv[3]) if len(sys.argv) > 3 else None
    timings = remote_tf.LivenessTimings(keep_alive, (keep_alive // 2 + 1) * 1000, 2000) if keep_alive else None
    connection = remote_tf.connect(timings=timings)
    say(event="connected", device=connection.device)
    if mode == "loop":
        loop(seconds)
    else:
        sleep = tf.function(sleep_on_worker)
        sleep(tf.constant(0.01, tf.float64))  # traced and registered: the timed call is in flight at once
        say(event="in_flight")
        say(event="call", **timed(lambda: sleep(tf.constant(seconds, tf.float64)).numpy()))
    say(event="done")
    os._exit(0)  # TensorFlow's remote context can stall interpreter shutdown


if __name__ == "__main__":
    main()
