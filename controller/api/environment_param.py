"""CreateEaiJupyter ``EnvironmentVar``: a JSON array of ``{"Key": ..., "Value": ...}`` in one query value.

The v3 SDK sends compact JSON, the v2 SDK ``json.dumps`` with spaces; both parse the same. The
variables reach the notebook server and its kernels, so they are checked here: names as a shell
would take them, bounded sizes, no duplicates, and none of the names the VM agent sets itself
(the TensorFlow endpoint, HOME, TMPDIR, IPYTHONDIR, Jupyter's own ``JUPYTER_*``).
"""

from __future__ import annotations

import json
import re

from controller.api.params import Params
from controller.errors import InvalidParameter

NAME = "EnvironmentVar"
MAX_VARIABLES = 64
MAX_VALUE = 4096
MAX_TOTAL = 32 * 1024
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
RESERVED = frozenset({"EAIS_TF_ENDPOINT", "HOME", "TMPDIR", "IPYTHONDIR"})
RESERVED_PREFIXES = ("JUPYTER_",)


def environment(params: Params) -> tuple[tuple[str, str], ...]:
    raw = params.get(NAME, "")
    if raw == "":
        return ()
    if len(raw) > 2 * MAX_TOTAL:
        raise _invalid(f"{NAME} is {len(raw)} characters long; at most {2 * MAX_TOTAL} are allowed.")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise _invalid(f'{NAME} must be a JSON array like [{{"Key":"NAME","Value":"value"}}].') from None
    if not isinstance(value, list) or len(value) > MAX_VARIABLES:
        raise _invalid(f'{NAME} must be a JSON array of at most {MAX_VARIABLES} {{"Key":...,"Value":...}} objects.')
    pairs = tuple(_pair(item) for item in value)
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _invalid(f"{NAME} names a variable twice; give each Key once.")
    if sum(len(key) + len(val) for key, val in pairs) > MAX_TOTAL:
        raise _invalid(f"{NAME} holds more than {MAX_TOTAL} characters in all.")
    return pairs


def _pair(item: object) -> tuple[str, str]:
    if not isinstance(item, dict) or set(item) - {"Key", "Value"} or not isinstance(item.get("Key"), str):
        raise _invalid(f'Each {NAME} entry must be an object {{"Key":"NAME","Value":"value"}}.')
    key, value = item["Key"], item.get("Value", "")
    if not isinstance(value, str):
        raise _invalid(f"{NAME} value of {key[:128]!r} must be a string.")
    if not _KEY.match(key):
        raise _invalid(f"{NAME} Key {key[:128]!r} must be 1-128 letters, digits or '_', not starting with a digit.")
    if key in RESERVED or key.startswith(RESERVED_PREFIXES):
        raise _invalid(f"{NAME} Key {key!r} is set by the notebook's VM agent itself and cannot be given.")
    if len(value) > MAX_VALUE or "\x00" in value:
        raise _invalid(f"{NAME} value of {key!r} must be at most {MAX_VALUE} characters, without NUL.")
    return key, value


def _invalid(message: str) -> InvalidParameter:
    return InvalidParameter(message, detail=NAME)
