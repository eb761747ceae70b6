"""Errors an app sees from ``remote_tf``: one tree, each class with a stable ``code``.

::

    RemoteTFError                 code                      when
    ├── AcceleratorUnavailable    accelerator_unavailable   connect()/session_target(): nothing usable
    │                                                       behind the endpoint (no agent, no accelerator
    │                                                       attached, TensorFlow not answering)
    ├── VersionMismatch           version_mismatch          the GPU node runs another TensorFlow
    │                                                       major.minor than this VM
    └── AcceleratorLost           accelerator_lost          a remote call failed because the accelerator
                                                            went away mid-session (detached, node lost)

Messages are for people and say what to check; programs match on the class or on ``code``.
TensorFlow's own errors from a lost accelerator are turned into :class:`AcceleratorLost` at one
boundary, :func:`remote_tf.tf_errors.translate_errors`. This module does not import TensorFlow, so
``except remote_tf.AcceleratorUnavailable`` costs nothing to write.
"""

from __future__ import annotations


class RemoteTFError(Exception):
    """Base of every error ``remote_tf`` raises."""

    code = "remote_tf_error"

    def __init__(self, message: str, *, endpoint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint


class AcceleratorUnavailable(RemoteTFError):
    """The endpoint cannot run TensorFlow work now; the message says why and what to check."""

    code = "accelerator_unavailable"


class VersionMismatch(RemoteTFError):
    """TensorFlow's remote protocols carry no version check, so we refuse before the first call."""

    code = "version_mismatch"

    def __init__(self, message: str, *, endpoint: str | None = None, local_version: str, node_version: str) -> None:
        super().__init__(message, endpoint=endpoint)
        self.local_version = local_version
        self.node_version = node_version


class AcceleratorLost(RemoteTFError):
    """A call failed because the remote accelerator stopped answering; reconnect after re-attaching."""

    code = "accelerator_lost"


ALL_ERRORS: tuple[type[RemoteTFError], ...] = (RemoteTFError, AcceleratorUnavailable, VersionMismatch, AcceleratorLost)
