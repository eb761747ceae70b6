"""Typed reading of RPC business parameters, with the EAIS value rules.

Every function raises a :class:`~controller.errors.EaisError` naming the parameter; none lets a
hostile value through to the rules or the database (lengths are bounded here).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from controller.errors import (
    DuplicateTagKey,
    EmptyTagKey,
    InvalidParameter,
    InvalidTagKey,
    InvalidTagValue,
    MissingParameter,
    TooManyTags,
)

Params = Mapping[str, str]
MAX_ID_LENGTH = 64
MAX_TAGS = 20
_NAME = re.compile(r"^[^\W\d_][\w:.\-]{1,127}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$")
_INDEXED = re.compile(r"^(?P<prefix>[A-Za-z]+)\.(?P<n>[1-9][0-9]{0,3})(?:\.(?P<field>Key|Value))?$")


def required(params: Params, name: str, *, max_length: int = MAX_ID_LENGTH) -> str:
    value = params.get(name, "")
    if value == "":
        raise MissingParameter(name)
    return bounded(name, value, max_length)


def optional(params: Params, name: str, *, max_length: int = MAX_ID_LENGTH, default: str = "") -> str:
    value = params.get(name)
    return default if value is None or value == "" else bounded(name, value, max_length)


def bounded(name: str, value: str, max_length: int) -> str:
    if len(value) > max_length:
        raise InvalidParameter(f"{name} is {len(value)} characters long; at most {max_length} are allowed.", detail=name)
    return value


def identifier(params: Params, name: str, *, required_: bool = True) -> str:
    value = required(params, name) if required_ else optional(params, name)
    if value and not _ID.match(value):
        raise InvalidParameter(f"{name} {value!r} is not a valid identifier.", detail=name)
    return value


def boolean(params: Params, name: str, *, default: bool = False) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise InvalidParameter(f"{name} must be true or false, not {value[:20]!r}.", detail=name)
    return lowered == "true"


def integer(params: Params, name: str, *, default: int, minimum: int, maximum: int) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    if not value.isascii() or not value.strip().lstrip("-").isdigit() or len(value) > 12:
        raise InvalidParameter(f"{name} must be an integer, not {value[:20]!r}.", detail=name)
    number = int(value)
    if not minimum <= number <= maximum:
        raise InvalidParameter(f"{name} must be between {minimum} and {maximum}; got {number}.", detail=name)
    return number


def json_id_list(params: Params, name: str, *, max_items: int) -> list[str] | None:
    """A JSON array of IDs inside one parameter (``["eais-a","eais-b"]``)."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidParameter(f'{name} must be a JSON array of strings, e.g. ["eais-xxx"].', detail=name) from None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidParameter(f'{name} must be a JSON array of strings, e.g. ["eais-xxx"].', detail=name)
    if len(value) > max_items:
        raise InvalidParameter(f"{name} holds {len(value)} IDs; at most {max_items} are allowed.", detail=name)
    return [bounded(name, item, MAX_ID_LENGTH) for item in value]


def instance_name(params: Params, name: str = "InstanceName") -> str:
    value = optional(params, name, max_length=128)
    if value and (not _NAME.match(value) or value.startswith(("http://", "https://"))):
        raise InvalidParameter(
            f"{name} must be 2-128 characters, start with a letter, and hold only letters, digits, ':', '_', '.', '-'.",
            detail=name,
        )
    return value


def client_token(params: Params) -> str | None:
    value = params.get("ClientToken")
    if value is None or value == "":
        return None
    if not value.isascii() or len(value) > 64:
        raise InvalidParameter("ClientToken must be ASCII and at most 64 characters.", detail="ClientToken")
    return value


def indexed_values(params: Params, prefix: str, *, max_items: int) -> list[str]:
    """``Prefix.1``, ``Prefix.2``, … in index order."""
    found: dict[int, str] = {}
    for key, value in params.items():
        match = _INDEXED.match(key)
        if match and match["prefix"] == prefix and match["field"] is None:
            found[int(match["n"])] = bounded(key, value, MAX_ID_LENGTH)
    if len(found) > max_items:
        raise InvalidParameter(f"At most {max_items} {prefix}.N values are allowed; got {len(found)}.", detail=prefix)
    return [found[n] for n in sorted(found)]


def tags(params: Params, prefix: str = "Tag") -> list[tuple[str, str | None]]:
    """``Tag.N.Key`` / ``Tag.N.Value`` pairs, validated (tag rules of the reference, §1a).

    The value is ``None`` when ``Tag.N.Value`` is absent (a filter on the key alone).
    """
    keys: dict[int, str] = {}
    values: dict[int, str] = {}
    for key, value in params.items():
        match = _INDEXED.match(key)
        if match and match["prefix"] == prefix and match["field"]:
            (keys if match["field"] == "Key" else values)[int(match["n"])] = value
    if len(keys) > MAX_TAGS or len(values) > MAX_TAGS:
        raise TooManyTags(f"At most {MAX_TAGS} tags are allowed per request.")
    pairs: list[tuple[str, str | None]] = []
    for n in sorted(set(keys) | set(values)):
        value = values.get(n)
        pairs.append((validated_tag_key(keys.get(n, "")), None if value is None else validated_tag_value(value)))
    seen = [k for k, _ in pairs]
    if len(set(seen)) != len(seen):
        raise DuplicateTagKey("A tag key appears twice in the request; each key may appear once.")
    return pairs


def validated_tag_key(key: str) -> str:
    if key == "":
        raise EmptyTagKey("A tag key cannot be empty.")
    if len(key) > 128 or key.lower().startswith(("aliyun", "acs:")) or "http://" in key or "https://" in key:
        raise InvalidTagKey(
            "A tag key is at most 128 characters, cannot begin with 'aliyun' or 'acs:', and cannot contain http:// or https://."
        )
    return key


def validated_tag_value(value: str) -> str:
    if len(value) > 128 or value.lower().startswith(("aliyun", "acs:")) or "http://" in value or "https://" in value:
        raise InvalidTagValue(
            "A tag value is at most 128 characters, cannot begin with 'aliyun' or 'acs:', and cannot contain http:// or https://."
        )
    return value
