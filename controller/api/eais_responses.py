"""EAIS answers on the wire: JSON unless the request says ``Format=XML``, the request id in a header.

``Format`` is read from the raw query string (and a form body), without parsing either, so that a
request refused for its parameters is still answered in the format it asked for.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi.responses import JSONResponse, Response

from controller.api.render import error_json
from controller.api.xml_body import XML_CONTENT_TYPE, xml_document
from controller.errors import EaisError

REQUEST_ID_HEADER = "x-acs-request-id"
_FORMAT_PARAM = re.compile(rb"(?:^|&)Format=([^&]*)")


class ResponseFormat(Enum):
    JSON = "JSON"
    XML = "XML"


def requested_format(query: bytes, form_body: bytes = b"") -> ResponseFormat:
    """XML when ``Format`` is ``XML`` in any case (query first, then form body); JSON otherwise, as Alibaba does."""
    for raw in (query, form_body):
        found = _FORMAT_PARAM.search(raw)
        if found:
            value = unquote_to_bytes(found.group(1).replace(b"+", b" ")).strip().lower()
            return ResponseFormat.XML if value == b"xml" else ResponseFormat.JSON
    return ResponseFormat.JSON


def success_response(action: str, fields: dict[str, Any], request_id: str, fmt: ResponseFormat) -> Response:
    body = {"RequestId": request_id, **fields}
    return _response(200, f"{action}Response", body, request_id, fmt)


def error_response(error: EaisError, request_id: str, host_id: str, fmt: ResponseFormat) -> Response:
    body = error_json(error, request_id=request_id, host_id=host_id)
    return _response(error.http_status, "Error", body, request_id, fmt, error.response_headers)


def _response(status: int, xml_root: str, body: dict[str, Any], request_id: str, fmt: ResponseFormat,
              headers: dict[str, str] | None = None) -> Response:
    all_headers = {REQUEST_ID_HEADER: request_id, **(headers or {})}
    if fmt is ResponseFormat.XML:
        return Response(xml_document(xml_root, body), status_code=status, headers=all_headers,
                        media_type=XML_CONTENT_TYPE)
    return JSONResponse(body, status_code=status, headers=all_headers)
