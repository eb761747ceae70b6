"""RPC signature 1.0 (HMAC-SHA1): the v2 SDK, the v3 SDK with ``signature_algorithm='v2'``, Terraform.

Every query and form parameter except ``Signature`` (blank values kept) is RFC 3986 encoded,
sorted by name and joined as ``k=v&...``; ``StringToSign = METHOD&%2F&pct(that)`` and the
signature is ``base64(HMAC-SHA1(secret + "&", StringToSign))``. No header is signed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from controller.api.rpc_request import percent_encode, signature_mismatch
from controller.errors import UnsupportedSignature

SIGNATURE_METHOD = "HMAC-SHA1"
SIGNATURE_VERSION = "1.0"
_SUPPORTED = (
    "Supported: SignatureMethod=HMAC-SHA1 with SignatureVersion=1.0 (Signature query parameter), "
    "or the ACS3-HMAC-SHA256 Authorization header."
)


def check_rpc_scheme(params: Mapping[str, str]) -> None:
    """Refuse signature methods, versions and types other than HMAC-SHA1 1.0 with an AccessKey."""
    method = params["SignatureMethod"]
    if method != SIGNATURE_METHOD:
        raise UnsupportedSignature(f"SignatureMethod {method[:40]!r} is not supported. {_SUPPORTED}")
    version = params["SignatureVersion"]
    if version != SIGNATURE_VERSION:
        raise UnsupportedSignature(f"SignatureVersion {version[:40]!r} is not supported. {_SUPPORTED}")
    # The v2 SDK sends SignatureType= (blank); BEARERTOKEN and others need credentials we do not issue.
    signature_type = params.get("SignatureType", "")
    if signature_type:
        raise UnsupportedSignature(
            f"SignatureType {signature_type[:40]!r} is not supported; sign with an AccessKey. {_SUPPORTED}"
        )


def verify_rpc(method: str, params: Mapping[str, str], secret: str) -> None:
    """Raise SignatureMismatch unless ``params['Signature']`` signs the other parameters."""
    to_sign = string_to_sign(method, params)
    expected = sign(secret, to_sign)
    given = params["Signature"].encode("utf-8", "surrogatepass")
    if not hmac.compare_digest(expected.encode(), given):
        raise signature_mismatch(
            to_sign, "Check the AccessKeySecret and that the request was not changed after signing."
        )


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    canonical = "&".join(
        f"{percent_encode(name)}={percent_encode(params[name])}" for name in sorted(params) if name != "Signature"
    )
    return f"{method}&%2F&{percent_encode(canonical)}"


def sign(secret: str, to_sign: str) -> str:
    digest = hmac.new(f"{secret}&".encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")
