"""Scenario: the accelerator behind the agent freezes, is detached, is killed; calls fail in bounded time.

Uses shrunken :class:`remote_tf.LivenessTimings` so that the checks take seconds; the relations
between the timings, which are what matter, are the production ones. Prints one JSON object that
tests/remote_tf/test_lost_accelerator.py asserts on.
"""

from __future__ import annotations

import faulthandler
import functools
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from tests.remote_tf.fake_agent import FakeAgentProcess
from tests.remote_tf.worker_process import start_worker

HANG_REPORT_AFTER_S = 150

# KeepAlive RPC every 1 s, pings after 1.5 s of silence: without the KeepAlive answers clearing
# the worker's ping strikes, the third ping would cut an 8 s call (measured: after 4.7 s).
KEEP_ALIVE_SECS, PING_AFTER_SILENCE_MS, PING_TIMEOUT_MS = 3, 1500, 1000
LONG_CALL_S = 8.0
ABANDONED_CALL_S = 5.0
DETACHED = "no accelerator attached to i-test; status Available"


def main() -> None:
    faulthandler.dump_traceback_later(HANG_REPORT_AFTER_S, exit=True)  # a hang shows its stacks
    booting = ThreadPoolExecutor(1).submit(start_worker)
    import tensorflow as tf

    import remote_tf

    timings = remote_tf.LivenessTimings(KEEP_ALIVE_SECS, PING_AFTER_SILENCE_MS, PING_TIMEOUT_MS)
    worker = booting.result()
    agent = FakeAgentProcess(serving_status(tf.__version__), forward_to=worker.endpoint)
    remote_tf.connect(agent.endpoint, timings=timings)
    sleep_remotely = remote_sleeper(tf)
    results = {"worst_case_detection_s": timings.worst_case_detection_s,
               "long_call": timed(lambda: sleep_remotely(LONG_CALL_S))}

    # A worker that survives finishes the abandoned call before it serves the new connection:
    # keep those calls short.
    results["frozen"] = fail_during_call(remote_tf, sleep_remotely, ABANDONED_CALL_S, act=worker.freeze)
    worker.thaw()
    results["after_thaw_reconnect"] = timed(lambda: reconnect_and_compute(tf, remote_tf))
    results["function_traced_before_reconnect"] = timed(lambda: sleep_remotely(0.01))

    detach = functools.partial(agent.detach, DETACHED)
    results["detached"] = fail_during_call(remote_tf, sleep_remotely, ABANDONED_CALL_S, act=detach)
    results["connect_while_detached"] = timed(lambda: remote_tf.reconnect())

    agent.attach(worker.endpoint, serving_status(tf.__version__))
    results["after_attach_reconnect"] = timed(lambda: reconnect_and_compute(tf, remote_tf))
    results["killed"] = kill_during_tf1_and_tf2_calls(tf, remote_tf, agent.endpoint, worker, sleep_remotely)
    print(json.dumps(results), flush=True)
    agent.close()
    os._exit(0)  # TensorFlow's remote context can stall interpreter shutdown


def serving_status(tf_version: str) -> dict:
    return {"state": "serving", "healthy": True, "status": "InUse", "node_tf_version": tf_version,
            "message": "serving eais-test"}


def sleep_op(tf, seconds):
    """A wait on the worker that burns no CPU, as an op (works in tf.function and in TF1 graphs)."""
    from tensorflow.python.data.experimental.ops import testing

    pause = tf.cast(seconds * 1e6 / 2, tf.int64)  # SleepDataset sleeps on both GetNext calls
    steps = tf.data.Dataset.range(1).apply(testing.sleep(pause))
    return steps.reduce(tf.constant(0, tf.int64), lambda total, step: total + step)


def remote_sleeper(tf):
    sleep_on_worker = tf.function(lambda seconds: sleep_op(tf, seconds))
    return lambda seconds: sleep_on_worker(tf.constant(seconds, tf.float64)).numpy()


def timed(call) -> dict:
    started = time.monotonic()
    try:
        outcome = {"value": repr(call())}
    except Exception as error:  # noqa: BLE001 - the class and message are the result
        outcome = {"error": type(error).__name__, "message": str(error), "code": getattr(error, "code", None)}
    return {**outcome, "seconds": time.monotonic() - started}


def fail_during_call(remote_tf, sleep_remotely, seconds: float, act) -> dict:
    sleep_remotely(0.01)  # traced and registered: the timed call is in flight at once
    threading.Timer(1.0, act).start()
    with_translation = timed(lambda: _translated(remote_tf, lambda: sleep_remotely(seconds)))
    return {**with_translation, "seconds_after_act": with_translation["seconds"] - 1.0}


def _translated(remote_tf, call):
    with remote_tf.translate_errors():
        return call()


def reconnect_and_compute(tf, remote_tf) -> float:
    connection = remote_tf.reconnect()
    return float(tf.reduce_sum(tf.ones([2, 2])).numpy()) if connection.device else -1.0


def kill_during_tf1_and_tf2_calls(tf, remote_tf, endpoint, worker, sleep_remotely) -> dict:
    sleep_remotely(0.01)
    graph = tf.Graph()
    with graph.as_default():
        seconds = tf.compat.v1.placeholder(tf.float64, [])
        wait = sleep_op(tf, seconds)
        session = tf.compat.v1.Session(remote_tf.session_target(endpoint), graph=graph)
    session.run(wait, {seconds: 0.01})  # session created on the worker before the kill
    tf1 = {}
    session_thread = threading.Thread(target=lambda: tf1.update(timed(lambda: session.run(wait, {seconds: 30.0}))))
    session_thread.start()
    threading.Timer(1.0, worker.kill).start()
    tf2 = timed(lambda: sleep_remotely(30.0))
    session_thread.join(60)
    return {"tf2": tf2, "tf1": tf1 or {"error": "still running after 60 s"}}


if __name__ == "__main__":
    main()
