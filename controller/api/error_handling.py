"""The one exception handler of the HTTP port: every exception of a request becomes an EaisError here.

Ours pass through as they are; the foreign ones are mapped at this one boundary: a route that does
not exist (404) or a method it does not take (405), a body that pydantic refuses, a bug. The
error's code and HTTP status come from ``ERROR_TABLE``; the API's own renderer writes the body
(the EAIS error body on ``/``, the admin shape under ``/admin``). A client that went away before
its request was read gets no answer and no ERROR line: nothing was accepted, nothing is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute, Match

from controller.api.request_outcome import Outcome, outcome_of
from controller.errors import EaisError, InternalError, InvalidParameter, MethodNotAllowed, MissingParameter, RequestTooLarge, UnknownAction

log = logging.getLogger("eais.api")

Renderer = Callable[[EaisError, Outcome], Response]
CLIENT_GONE = "ClientDisconnected"  # the metrics code of a request whose client left mid-way; never sent
_CLIENT_CLOSED_STATUS = 499  # nginx's "client closed request"; never reaches the wire


def install_error_handler(app: FastAPI, render: Renderer) -> None:
    """Route every exception of ``app`` through :func:`as_eais_error` and ``render``."""

    async def answer(request: Request, exc: Exception) -> Response:
        outcome = outcome_of(request.scope)
        if isinstance(exc, ClientDisconnect) or isinstance(exc.__cause__, ClientDisconnect):  # FastAPI wraps it in a 400
            log.debug("request %s: the client went away before its request was read", outcome.request_id)
            outcome.error_code = CLIENT_GONE
            return Response(status_code=_CLIENT_CLOSED_STATUS)
        error = as_eais_error(exc, request)
        outcome.error_code = error.code
        if isinstance(error, InternalError) and f"request id {outcome.request_id}" not in getattr(exc, "__notes__", []):
            exc.add_note(f"request id {outcome.request_id}")  # uvicorn logs the traceback; this ties it to the answer
        return render(error, outcome)

    for kind in (EaisError, HTTPException, RequestValidationError, ClientDisconnect, Exception):
        app.add_exception_handler(kind, answer)


def as_eais_error(exc: Exception, request: Request) -> EaisError:
    """The EaisError a caller is shown for ``exc``."""
    if isinstance(exc, EaisError):
        return exc
    if isinstance(exc, RequestValidationError):
        return _from_validation(exc)
    if isinstance(exc, HTTPException):
        return _from_http(exc, request)
    return InternalError("The request processing has failed due to some unknown error.")


def _from_http(exc: HTTPException, request: Request) -> EaisError:
    where = f"{request.method} {request.url.path[:200]}"
    if exc.status_code == 404:
        return UnknownAction(f"Specified api is not found, please check your url and method: no {where}.")
    if exc.status_code == 405:
        allowed = _allowed_methods(request)
        return MethodNotAllowed(f"{where} is not allowed; use {' or '.join(allowed) or 'another method'}.",
                                allowed=allowed)
    if exc.status_code == 413:
        return RequestTooLarge(f"The request body of {where} is too large.")
    if exc.status_code == 400:
        return InvalidParameter(f"{where}: {exc.detail}")
    return InternalError(f"{where} failed with HTTP status {exc.status_code}.")


def _allowed_methods(request: Request) -> tuple[str, ...]:
    """Every method some route of the path takes (Starlette's own ``Allow`` names only the first such route)."""
    routes = getattr(request.scope.get("app"), "routes", ())
    found = {method for route in routes if isinstance(route, BaseRoute) and route.matches(request.scope)[0] is not Match.NONE
             for method in getattr(route, "methods", None) or ()}
    return tuple(sorted(found - {"HEAD"}))


def _from_validation(exc: RequestValidationError) -> EaisError:
    """The first problem pydantic found, named after its field (``amount`` is ``InvalidParameter.Amount``)."""
    problem = exc.errors()[0]
    location = [str(part) for part in problem.get("loc", ()) if not isinstance(part, int)]
    field = location[-1] if len(location) > 1 else "Body"
    name = "".join(word[:1].upper() + word[1:] for word in field.split("_"))
    if problem.get("type") == "missing":
        return MissingParameter(name)
    if problem.get("type") == "json_invalid":
        return InvalidParameter("The request body is not valid JSON.", detail="Body")
    # pydantic's own words, never the input itself: it may be a number JSON cannot even write back
    return InvalidParameter(f"{name}: {problem.get('msg', 'invalid value')}.", detail=name)
