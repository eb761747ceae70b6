"""The one place where controller errors become gRPC statuses (via ``controller.errors.ERROR_TABLE``).

The status message is the error's human message; the trailing metadata ``x-eais-error-code``
carries the machine-readable EAIS code. Anything unexpected is logged and answered INTERNAL
without details, so no internals leak to an agent.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn

import grpc

from controller.errors import EaisError

log = logging.getLogger(__name__)
ERROR_CODE_KEY = "x-eais-error-code"


def translate_errors(method: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate an async servicer method (unary, or server-streaming as an async generator)."""
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def streaming(self: Any, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                async for message in method(self, request, context):
                    yield message
            except Exception as exc:  # noqa: BLE001 - the boundary: everything becomes a status
                await _abort(context, exc, method.__name__)

        return streaming

    @functools.wraps(method)
    async def unary(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Awaitable[Any]:
        try:
            return await method(self, request, context)
        except Exception as exc:  # noqa: BLE001 - the boundary: everything becomes a status
            await _abort(context, exc, method.__name__)

    return unary


async def _abort(context: grpc.aio.ServicerContext, exc: Exception, method_name: str) -> NoReturn:
    if isinstance(exc, EaisError):
        context.set_trailing_metadata(((ERROR_CODE_KEY, exc.code),))
        await context.abort(exc.spec.grpc_status, exc.message)
    log.exception("AgentLink.%s failed unexpectedly", method_name, exc_info=exc)
    context.set_trailing_metadata(((ERROR_CODE_KEY, "InternalError"),))
    await context.abort(grpc.StatusCode.INTERNAL, f"The controller failed while handling {method_name}; see its log.")
