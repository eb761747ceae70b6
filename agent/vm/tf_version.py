"""TensorFlow versions: the VM's own (read from package metadata, never by importing TensorFlow)
and the check that it matches the node's major.minor, since TF's remote protocols carry no
version check of their own."""

from __future__ import annotations

import re
from importlib import metadata

# Distributions that provide the ``tensorflow`` module, most common first.
TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-intel", "tensorflow-macos")
MAJOR_MINOR = re.compile(r"(\d+)\.(\d+)")


def local_tf_version() -> str:
    """The installed TensorFlow's version, or "" when TensorFlow is not installed."""
    for distribution in TENSORFLOW_DISTRIBUTIONS:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return ""


def major_minor(version: str) -> tuple[int, int] | None:
    found = MAJOR_MINOR.match(version.strip())
    return (int(found.group(1)), int(found.group(2))) if found else None


def version_mismatch(node_version: str, local_version: str) -> str | None:
    """Why the two cannot work together, or None when they can (or one of them is unknown)."""
    node, local = major_minor(node_version), major_minor(local_version)
    if node is None or local is None or node == local:
        return None
    return (f"TensorFlow version mismatch: the node's workers run TensorFlow {node_version} but this VM has "
            f"TensorFlow {local_version}; install tensorflow {node[0]}.{node[1]}.* on the VM "
            "(major.minor must match)")
