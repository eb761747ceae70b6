"""Identifiers in the shapes users know (``eais-…``, ``LTAI…``) drawn from a CSPRNG."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_lowercase + string.digits


def _random_text(length: int, alphabet: str = _ALPHABET) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_instance_id() -> str:
    return "eais-" + _random_text(20)


def new_account_id() -> str:
    return "acc-" + _random_text(16)


def new_attachment_id() -> str:
    return "att-" + _random_text(20)


def new_access_key_id() -> str:
    return "LTAI" + _random_text(20, string.ascii_letters + string.digits)


def new_secret(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)


def new_request_id() -> str:
    """A RequestId in the UUID shape Alibaba uses (upper-case hex with dashes)."""
    raw = secrets.token_hex(16).upper()
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
