"""ACS3-HMAC-SHA256, the signature of the v3 SDK (``Authorization: ACS3-HMAC-SHA256 ...``).

The canonical request is ``METHOD\\nURI\\nQUERY\\nHEADERS\\nSIGNED_HEADERS\\nSHA256(body)``,
rebuilt from the header names the caller lists in ``SignedHeaders`` (the SDK signs more than
the documented minimum). ``StringToSign = "ACS3-HMAC-SHA256\\n" + hex(SHA256(canonical))`` and
the signature is hex ``HMAC-SHA256(secret, StringToSign)``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from controller.api.rpc_request import percent_encode, signature_mismatch
from controller.errors import IncompleteSignature, UnsupportedSignature

ALGORITHM = "ACS3-HMAC-SHA256"
REQUIRED_SIGNED_HEADERS = frozenset(
    {"host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"}
)
MAX_AUTHORIZATION_CHARS = 2048
MAX_SIGNED_HEADERS = 40
MAX_HEADER_VALUE_CHARS = 4096
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()

_HEADER_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")
_HOW_TO_SIGN = (
    f"Sign with {ALGORITHM}: Authorization: {ALGORITHM} "
    "Credential=<AccessKeyId>,SignedHeaders=<a;b;...>,Signature=<hex>."
)


@dataclass(frozen=True, slots=True)
class Acs3Authorization:
    """The three fields of an ACS3 ``Authorization`` header."""

    access_key_id: str
    signed_headers: tuple[str, ...]  # sorted, lower case
    signature: str  # lower-case hex as sent


def is_acs3(authorization: str) -> bool:
    """True when the header claims any ACS3 algorithm (supported or not)."""
    return authorization.lstrip()[:5].upper() == "ACS3-"


def parse_authorization(authorization: str) -> Acs3Authorization:
    """Split the header into its fields, refusing other algorithms and malformed text."""
    if len(authorization) > MAX_AUTHORIZATION_CHARS:
        raise IncompleteSignature(
            f"The Authorization header is {len(authorization)} characters; the limit is "
            f"{MAX_AUTHORIZATION_CHARS}. {_HOW_TO_SIGN}"
        )
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise UnsupportedSignature(
            f"The signature algorithm {algorithm[:40]!r} is not supported. Supported: {ALGORITHM} "
            "(Authorization header) and HMAC-SHA1 with SignatureVersion 1.0 (Signature query parameter)."
        )
    fields = _authorization_fields(rest)
    return Acs3Authorization(
        access_key_id=fields["Credential"],
        signed_headers=_signed_header_names(fields["SignedHeaders"]),
        signature=fields["Signature"].lower(),
    )


def verify_acs3(
    auth: Acs3Authorization,
    *,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
) -> None:
    """Raise SignatureMismatch unless the body hash and the signature are both right."""
    body_hash = hashlib.sha256(body).hexdigest() if body else EMPTY_BODY_SHA256
    canonical = canonical_request(method, path, query, headers, auth.signed_headers, body_hash)
    to_sign = string_to_sign(canonical)
    if headers["x-acs-content-sha256"].strip().lower() != body_hash:
        raise signature_mismatch(
            to_sign, "The x-acs-content-sha256 header is not the SHA-256 of the body received. Hash the exact body bytes sent."
        )
    expected = sign(secret, to_sign)
    if not hmac.compare_digest(expected.encode(), auth.signature.encode("utf-8", "surrogatepass")):
        raise signature_mismatch(
            to_sign, "Check the AccessKeySecret and that the request was not changed after signing."
        )


def canonical_request(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    signed_headers: tuple[str, ...],
    body_hash: str,
) -> str:
    """The canonical request text; ``signed_headers`` must be sorted and present in ``headers``."""
    canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in signed_headers)
    return "\n".join(
        (method, path or "/", canonical_query(query), canonical_headers, ";".join(signed_headers), body_hash)
    )


def canonical_query(query: Mapping[str, str]) -> str:
    """``k=pct(v)`` sorted by name, blanks kept as ``k=``."""
    return "&".join(f"{percent_encode(name)}={percent_encode(query[name])}" for name in sorted(query))


def string_to_sign(canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{ALGORITHM}\n{digest}"


def sign(secret: str, to_sign: str) -> str:
    return hmac.new(secret.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def check_signed_headers(auth: Acs3Authorization, headers: Mapping[str, str]) -> None:
    """Every required header is signed, and every signed header arrived with a sane value."""
    missing = sorted(REQUIRED_SIGNED_HEADERS.difference(auth.signed_headers))
    if missing:
        raise IncompleteSignature(
            f"SignedHeaders must include {', '.join(missing)}. Sign at least "
            f"{';'.join(sorted(REQUIRED_SIGNED_HEADERS))}."
        )
    for name in auth.signed_headers:
        value = headers.get(name)
        if value is None:
            raise IncompleteSignature(
                f"The signed header {name!r} is not in the request. Send every header listed in SignedHeaders."
            )
        if len(value) > MAX_HEADER_VALUE_CHARS:
            raise IncompleteSignature(
                f"The signed header {name!r} is longer than {MAX_HEADER_VALUE_CHARS} characters. Do not sign it."
            )


def _authorization_fields(rest: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or not value.strip():
            raise IncompleteSignature(f"The Authorization header part {part[:40]!r} is not Name=Value. {_HOW_TO_SIGN}")
        if key in fields:
            raise IncompleteSignature(f"The Authorization header repeats {key[:40]!r}. {_HOW_TO_SIGN}")
        fields[key] = value.strip()
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if name not in fields]
    if missing:
        raise IncompleteSignature(f"The Authorization header lacks {', '.join(missing)}. {_HOW_TO_SIGN}")
    return fields


def _signed_header_names(text: str) -> tuple[str, ...]:
    names = text.lower().split(";")
    if len(names) > MAX_SIGNED_HEADERS:
        raise IncompleteSignature(f"SignedHeaders lists more than {MAX_SIGNED_HEADERS} headers. Sign fewer headers.")
    if len(set(names)) != len(names):
        raise IncompleteSignature("SignedHeaders lists a header twice. List each signed header once.")
    for name in names:
        if not _HEADER_NAME.fullmatch(name):
            raise IncompleteSignature(f"SignedHeaders has the invalid header name {name[:40]!r}. {_HOW_TO_SIGN}")
    return tuple(sorted(names))
