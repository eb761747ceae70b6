"""Loading a SavedModel from this VM's disk and running it on the remote accelerator.

The GPU node cannot see the VM's files, so the variable files are read by this process
(``experimental_io_device="/job:localhost"``, the job name :mod:`remote_tf.connection` gives this
process) and their values sent to the accelerator, where the variables and the signatures live.
Without that option TensorFlow reads the files on the worker, where the path does not exist.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from remote_tf.connection import LOCAL_JOB, connect, current_connection

LOCAL_IO_DEVICE = f"/job:{LOCAL_JOB}"


def load_saved_model(path: str | os.PathLike[str], tags: str | Sequence[str] | None = None) -> Any:
    """``tf.saved_model.load`` with files read here and variables and signatures on the remote device.

    Connects with the defaults (``remote_tf.connect()``) if this process is not connected yet. A
    relative ``path`` is relative to this process's working directory. Like any TensorFlow call,
    the signatures run where the calling thread's device scope says: remotely on the thread that
    called ``connect()``, locally on other threads unless they use ``connection.device_scope()``.
    """
    connection = current_connection() or connect()
    options = tf.saved_model.LoadOptions(experimental_io_device=LOCAL_IO_DEVICE)
    with connection.device_scope():
        return tf.saved_model.load(os.fspath(path), tags=tags, options=options)
