"""Who is calling: check a signed EAIS RPC request and return the authenticated :class:`Caller`.

Order of checks (each failure is an EaisError with the EAIS code the SDKs expect):
scheme (ACS3 header, else RPC ``Signature``) -> required signature fields -> timestamp format and
window -> secret lookup -> signature -> nonce (only once the signature holds, so nobody can burn
someone else's nonces) -> action and version. Action and version are read only from signed
places: for HMAC-SHA1 the ``x-acs-*`` headers are unsigned, so the ``Action``/``Version``
parameters rule there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from controller.api import signature_acs3, signature_rpc
from controller.api.rpc_request import RpcRequest, form_params
from controller.errors import (
    AccessKeyNotFound,
    IncompleteSignature,
    InvalidParameter,
    MissingParameter,
    NonceReplayed,
    TimestampExpired,
    TimestampMalformed,
    UnsupportedVersion,
)

API_VERSION = "2019-06-24"
PROTOCOL_PARAMS = frozenset(
    {"Action", "Version", "Format", "Timestamp", "SignatureMethod", "SignatureType", "SignatureVersion",
     "SignatureNonce", "AccessKeyId", "Signature", "SecurityToken"}
)
TIMESTAMP_FORMAT_HINT = "YYYY-MM-DDThh:mm:ssZ in UTC, e.g. 2026-01-01T08:00:00Z"
_RPC_REQUIRED = ("AccessKeyId", "SignatureMethod", "SignatureVersion", "Timestamp")
_TIMESTAMP = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z")
# AccessKey IDs and nonces are stored and looked up; keep them short printable ASCII.
_TOKEN = re.compile(r"[\x21-\x7e]{1,128}")
_HOW_TO_SIGN = (
    "Sign the request with ACS3-HMAC-SHA256 (Authorization header, as the v3 SDK does) or with "
    "HMAC-SHA1 signature 1.0 (Signature query parameter, as the v2 SDK does)."
)


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated request: who sent it, what it asks for, and its business parameters."""

    access_key_id: str
    action: str
    version: str
    nonce: str
    signed_at: datetime  # tz-aware UTC
    params: dict[str, str]  # business parameters only


@dataclass(frozen=True, slots=True)
class _Claim:
    """What a request says about itself, before the signature is checked."""

    access_key_id: str
    nonce: str
    timestamp: str
    verify: Callable[[str], None]  # raises SignatureMismatch given the caller's secret
    action: str  # from signed places only; "" when absent
    version: str


def authenticate(
    request: RpcRequest,
    *,
    lookup_secret: Callable[[str], str],
    remember_nonce: Callable[[str, str, datetime], bool],
    now: datetime,
    window: timedelta = timedelta(minutes=15),
    api_version: str = API_VERSION,
) -> Caller:
    """Return the Caller of a correctly signed, fresh, first-seen request; raise EaisError otherwise."""
    query = unique_params(request.query, "query string")
    params = _merge(query, unique_params(form_params(request), "form body"))
    claim = _claim(request, query, params)
    signed_at = parse_timestamp(claim.timestamp)
    check_freshness(signed_at, now, window)
    claim.verify(lookup_secret(claim.access_key_id))
    if not remember_nonce(claim.access_key_id, claim.nonce, signed_at):
        raise NonceReplayed(
            f"The signature nonce {claim.nonce!r} has already been used. "
            "Use a new random nonce for every request; the official SDKs do this."
        )
    return Caller(
        access_key_id=claim.access_key_id,
        action=_required(claim.action, "Action"),
        version=_supported_version(_required(claim.version, "Version"), api_version),
        nonce=claim.nonce,
        signed_at=signed_at,
        params={name: value for name, value in params.items() if name not in PROTOCOL_PARAMS},
    )


def unique_params(pairs: Iterable[tuple[str, str]], where: str) -> dict[str, str]:
    """Pairs as a dict, refusing a name given twice."""
    found: dict[str, str] = {}
    for name, value in pairs:
        if name in found:
            raise InvalidParameter(
                f"The parameter {name[:60]!r} appears more than once in the {where}. Send each parameter once."
            )
        found[name] = value
    return found


def parse_timestamp(text: str) -> datetime:
    """``YYYY-MM-DDThh:mm:ssZ`` -> aware UTC datetime, or TimestampMalformed."""
    match = _TIMESTAMP.fullmatch(text)
    if match:
        try:
            return datetime(*map(int, match.groups()), tzinfo=UTC)
        except ValueError:
            pass
    raise TimestampMalformed(f"The timestamp {text[:40]!r} is not {TIMESTAMP_FORMAT_HINT}.")


def check_freshness(signed_at: datetime, now: datetime, window: timedelta) -> None:
    if abs(now - signed_at) > window:
        raise TimestampExpired(
            f"The request was signed at {signed_at:%Y-%m-%dT%H:%M:%SZ} but the server time is "
            f"{now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}; requests must be signed within "
            f"{_minutes(window)} of server time. Synchronise the client clock (NTP) and sign again."
        )


def _merge(query: dict[str, str], form: dict[str, str]) -> dict[str, str]:
    if not form:
        return query
    for name in form:
        if name in query:
            raise InvalidParameter(
                f"The parameter {name[:60]!r} is in both the query string and the form body. Send it once."
            )
    return {**query, **form}


def _claim(request: RpcRequest, query: Mapping[str, str], params: Mapping[str, str]) -> _Claim:
    authorization = request.headers.get("authorization", "")
    if authorization and signature_acs3.is_acs3(authorization):
        return _acs3_claim(request, authorization, query)
    if "Signature" in params:
        return _rpc_claim(request, params)
    if authorization:
        signature_acs3.parse_authorization(authorization)  # raises UnsupportedSignature for other schemes
    raise IncompleteSignature(f"The request is not signed. {_HOW_TO_SIGN}")


def _acs3_claim(request: RpcRequest, authorization: str, query: Mapping[str, str]) -> _Claim:
    auth = signature_acs3.parse_authorization(authorization)
    headers = request.headers
    signature_acs3.check_signed_headers(auth, headers)

    def verify(secret: str) -> None:
        signature_acs3.verify_acs3(
            auth, method=request.method, path=request.path, query=query, headers=headers,
            body=request.body, secret=secret,
        )

    # The query is signed too under ACS3, so Action/Version there are trustworthy as a fallback.
    return _Claim(
        access_key_id=_access_key_id(auth.access_key_id),
        nonce=_nonce(headers["x-acs-signature-nonce"].strip()),
        timestamp=headers["x-acs-date"].strip(),
        verify=verify,
        action=_agreeing(headers["x-acs-action"].strip() or query.get("Action", ""), query.get("Action"), "Action"),
        version=_agreeing(headers["x-acs-version"].strip() or query.get("Version", ""), query.get("Version"), "Version"),
    )


def _rpc_claim(request: RpcRequest, params: Mapping[str, str]) -> _Claim:
    for name in _RPC_REQUIRED:
        if not params.get(name):
            raise MissingParameter(name)
    signature_rpc.check_rpc_scheme(params)

    def verify(secret: str) -> None:
        signature_rpc.verify_rpc(request.method, params, secret)

    headers = request.headers
    return _Claim(
        access_key_id=_access_key_id(params["AccessKeyId"]),
        nonce=_nonce(params.get("SignatureNonce", "")),
        timestamp=params["Timestamp"],
        verify=verify,
        action=_agreeing(params.get("Action", ""), headers.get("x-acs-action"), "Action"),
        version=_agreeing(params.get("Version", ""), headers.get("x-acs-version"), "Version"),
    )


def _agreeing(signed: str, other: str | None, name: str) -> str:
    """The signed value, refusing a second copy that says something else."""
    if signed and other and other.strip() != signed:
        raise InvalidParameter(
            f"{name} is given twice with different values ({signed[:60]!r} and {other[:60]!r}). Send one {name}."
        )
    return signed


def _access_key_id(value: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise AccessKeyNotFound(
            f"The AccessKeyId {value[:40]!r} is not a valid AccessKey ID. Use the AccessKeyId you were issued."
        )
    return value


def _nonce(value: str) -> str:
    if not value:
        raise IncompleteSignature(
            "The signature nonce is missing. Send a new random SignatureNonce (HMAC-SHA1) or "
            "x-acs-signature-nonce header (ACS3) with every request, and sign it."
        )
    if not _TOKEN.fullmatch(value):
        raise IncompleteSignature(
            f"The signature nonce {value[:40]!r} must be 1 to 128 printable ASCII characters. Use a random hex string."
        )
    return value


def _required(value: str, name: str) -> str:
    if not value:
        raise MissingParameter(name)
    return value


def _supported_version(version: str, api_version: str) -> str:
    if version != api_version:
        raise UnsupportedVersion(
            f"The API version {version[:40]!r} is not supported. This service implements EAIS {api_version}; "
            f"send Version={api_version} (x-acs-version: {api_version})."
        )
    return version


def _minutes(window: timedelta) -> str:
    minutes = window.total_seconds() / 60
    return f"±{minutes:g} minutes"
