"""Errors of the controller: one tree, one table, one renderer.

Every failure a caller can see is an :class:`EaisError`. The tree::

    EaisError
    ├── AuthError                     the caller could not be authenticated
    │   ├── AccessKeyNotFound         InvalidAccessKeyId.NotFound        404
    │   ├── AccessKeyInactive         InvalidAccessKeyId.Inactive        403
    │   ├── IncompleteSignature       IncompleteSignature                400
    │   ├── SignatureMismatch         SignatureDoesNotMatch              400
    │   ├── UnsupportedSignature      InvalidSignatureMethod             400
    │   ├── TimestampMalformed        InvalidTimeStamp.Format            400
    │   ├── TimestampExpired          InvalidTimeStamp.Expired           400
    │   ├── NonceReplayed             SignatureNonceUsed                 400
    │   └── AdminTokenRejected        InvalidAdminToken                  401
    ├── RequestError                  the request itself is malformed
    │   ├── UnsupportedVersion        InvalidVersion                     400
    │   ├── UnknownAction             InvalidAction.NotFound             404  (also an unknown path)
    │   ├── MethodNotAllowed          UnsupportedHTTPMethod              405
    │   ├── MalformedHttpRequest      MalformedRequest                   400  (not valid HTTP/1.1)
    │   ├── UnsupportedAction         UnsupportedOperation               400
    │   ├── MissingParameter          MissingParameter[.Name]            400
    │   ├── InvalidParameter          InvalidParameter[.Name]            400
    │   ├── RequestTooLarge           RequestEntityTooLarge              413
    │   └── IdempotentParameterMismatch                                  400
    ├── DomainError                   a product rule refused the request
    │   ├── InvalidRegion, InvalidInstanceType, InstanceNotFound, InvalidEaiStatus,
    │   ├── WrongInstanceFamily       InvalidInstanceId                  400  (an EI instance to an EAI action, or back)
    │   ├── ClientNotFound, ClientForbidden, ClientTypeError, ClientVpcMismatch,
    │   ├── ClientVSwitchMismatch, ClientTooSmall, ClientAlreadyBound, VSwitchNotFound,
    │   ├── NoPermission, InDebt, NoResources,
    │   ├── tag errors (DuplicateTagKey, TooManyTags, InvalidTagKey, InvalidTagValue,
    │   │   EmptyTagKey, TooManyResourceIds, DuplicateResourceId, InvalidResourceType),
    │   ├── resource-group errors (InvalidResourceGroup, ResourceNotFound)
    │   └── account errors of the admin API (AccountNotFound, AccountNameTaken)
    └── ServerError                   our fault, never the caller's
        ├── InternalError             InternalError                      500
        ├── ServiceBusy               ServiceUnavailable                 503
        └── StorageError              the database cannot take writes (or at all)
            ├── StorageFull           ServiceUnavailable.StorageFull     503
            ├── StorageReadOnly       ServiceUnavailable.StorageReadOnly 503
            └── StorageUnreachable    ServiceUnavailable.Database        503

:data:`ERROR_TABLE` maps each class to its EAIS code, HTTP status and gRPC status;
``tests/test_errors.py`` fails when a class has no entry. Messages are for people; callers
match on ``code`` only. ``response_headers`` are the HTTP headers an error needs (``Allow`` on a
405, ``WWW-Authenticate`` on a 401); ``controller.api.error_handling`` is the one place that turns
any exception into one of these.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc


@dataclass(frozen=True)
class ErrorSpec:
    code: str
    http_status: int
    grpc_status: grpc.StatusCode


class EaisError(Exception):
    """Base of every error a caller can see. ``detail`` extends the code (``MissingParameter.RegionId``)."""

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    @property
    def spec(self) -> ErrorSpec:
        return spec_for(type(self))

    @property
    def code(self) -> str:
        base = self.spec.code
        return f"{base}.{self.detail}" if self.detail else base

    @property
    def http_status(self) -> int:
        return self.spec.http_status

    @property
    def response_headers(self) -> dict[str, str]:
        return {}


class AuthError(EaisError): ...
class AccessKeyNotFound(AuthError): ...
class AccessKeyInactive(AuthError): ...
class IncompleteSignature(AuthError): ...
class SignatureMismatch(AuthError): ...
class UnsupportedSignature(AuthError): ...
class TimestampMalformed(AuthError): ...
class TimestampExpired(AuthError): ...
class NonceReplayed(AuthError): ...
class AdminTokenRejected(AuthError):
    @property
    def response_headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}

class RequestError(EaisError): ...
class UnsupportedVersion(RequestError): ...
class UnknownAction(RequestError): ...
class UnsupportedAction(RequestError): ...
class MethodNotAllowed(RequestError):
    def __init__(self, message: str, *, allowed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allowed = allowed

    @property
    def response_headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allowed)}
class MalformedHttpRequest(RequestError): ...
class MissingParameter(RequestError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"The input parameter {name} that is mandatory for processing this request is not supplied.",
            detail=name,
        )
class InvalidParameter(RequestError): ...
class RequestTooLarge(RequestError): ...
class IdempotentParameterMismatch(RequestError): ...

class DomainError(EaisError): ...
class InvalidRegion(DomainError): ...
class InvalidInstanceType(DomainError): ...
class InstanceNotFound(DomainError): ...
class InvalidEaiStatus(DomainError): ...
class WrongInstanceFamily(DomainError): ...
class ClientNotFound(DomainError): ...
class ClientForbidden(DomainError): ...
class ClientTypeError(DomainError): ...
class ClientVpcMismatch(DomainError): ...
class ClientVSwitchMismatch(DomainError): ...
class ClientTooSmall(DomainError): ...
class ClientAlreadyBound(DomainError): ...
class VSwitchNotFound(DomainError): ...
class NoPermission(DomainError): ...
class InDebt(DomainError): ...
class NoResources(DomainError): ...
class DuplicateTagKey(DomainError): ...
class TooManyTags(DomainError): ...
class InvalidTagKey(DomainError): ...
class InvalidTagValue(DomainError): ...
class EmptyTagKey(DomainError): ...
class TooManyResourceIds(DomainError): ...
class DuplicateResourceId(DomainError): ...
class InvalidResourceType(DomainError): ...
class InvalidResourceGroup(DomainError): ...
class ResourceNotFound(DomainError): ...
class AccountNotFound(DomainError): ...
class AccountNameTaken(DomainError): ...

class ServerError(EaisError): ...
class InternalError(ServerError): ...
class ServiceBusy(ServerError): ...
class StorageError(ServerError): ...
class StorageFull(StorageError): ...
class StorageReadOnly(StorageError): ...
class StorageUnreachable(StorageError): ...


_S = grpc.StatusCode
ERROR_TABLE: dict[type[EaisError], ErrorSpec] = {
    AccessKeyNotFound: ErrorSpec("InvalidAccessKeyId.NotFound", 404, _S.UNAUTHENTICATED),
    AccessKeyInactive: ErrorSpec("InvalidAccessKeyId.Inactive", 403, _S.PERMISSION_DENIED),
    IncompleteSignature: ErrorSpec("IncompleteSignature", 400, _S.UNAUTHENTICATED),
    SignatureMismatch: ErrorSpec("SignatureDoesNotMatch", 400, _S.UNAUTHENTICATED),
    UnsupportedSignature: ErrorSpec("InvalidSignatureMethod", 400, _S.UNAUTHENTICATED),
    TimestampMalformed: ErrorSpec("InvalidTimeStamp.Format", 400, _S.UNAUTHENTICATED),
    TimestampExpired: ErrorSpec("InvalidTimeStamp.Expired", 400, _S.UNAUTHENTICATED),
    NonceReplayed: ErrorSpec("SignatureNonceUsed", 400, _S.UNAUTHENTICATED),
    AdminTokenRejected: ErrorSpec("InvalidAdminToken", 401, _S.UNAUTHENTICATED),
    UnsupportedVersion: ErrorSpec("InvalidVersion", 400, _S.INVALID_ARGUMENT),
    UnknownAction: ErrorSpec("InvalidAction.NotFound", 404, _S.UNIMPLEMENTED),
    UnsupportedAction: ErrorSpec("UnsupportedOperation", 400, _S.UNIMPLEMENTED),
    MethodNotAllowed: ErrorSpec("UnsupportedHTTPMethod", 405, _S.UNIMPLEMENTED),
    MalformedHttpRequest: ErrorSpec("MalformedRequest", 400, _S.INVALID_ARGUMENT),
    MissingParameter: ErrorSpec("MissingParameter", 400, _S.INVALID_ARGUMENT),
    InvalidParameter: ErrorSpec("InvalidParameter", 400, _S.INVALID_ARGUMENT),
    RequestTooLarge: ErrorSpec("RequestEntityTooLarge", 413, _S.RESOURCE_EXHAUSTED),
    IdempotentParameterMismatch: ErrorSpec("IdempotentParameterMismatch", 400, _S.ALREADY_EXISTS),
    InvalidRegion: ErrorSpec("InvalidRegionId", 400, _S.INVALID_ARGUMENT),
    InvalidInstanceType: ErrorSpec("InvalidInstanceType", 400, _S.INVALID_ARGUMENT),
    InstanceNotFound: ErrorSpec("InvalidParameter.InstanceId.NotFound", 404, _S.NOT_FOUND),
    InvalidEaiStatus: ErrorSpec("InvalidEaiStatus", 400, _S.FAILED_PRECONDITION),
    WrongInstanceFamily: ErrorSpec("InvalidInstanceId", 400, _S.FAILED_PRECONDITION),
    ClientNotFound: ErrorSpec("InvalidClientInstanceId.NotFound", 400, _S.NOT_FOUND),
    ClientForbidden: ErrorSpec("InvalidClientInstanceId.Forbidden", 404, _S.NOT_FOUND),
    ClientTypeError: ErrorSpec("InvalidClientInstanceId.TypeError", 400, _S.INVALID_ARGUMENT),
    ClientVpcMismatch: ErrorSpec("InvalidClientInstanceId.VpcIdError", 400, _S.FAILED_PRECONDITION),
    ClientVSwitchMismatch: ErrorSpec("InvalidClientInstanceId.VSwitchIdError", 400, _S.FAILED_PRECONDITION),
    ClientTooSmall: ErrorSpec("InvalidClientInstanceId.SpecTooSmall", 400, _S.FAILED_PRECONDITION),
    ClientAlreadyBound: ErrorSpec("InvalidClientInstanceId.AlreadyBound", 400, _S.FAILED_PRECONDITION),
    VSwitchNotFound: ErrorSpec("InvalidVSwitchId.NotFound", 400, _S.NOT_FOUND),
    NoPermission: ErrorSpec("NoPermission", 403, _S.PERMISSION_DENIED),
    InDebt: ErrorSpec("InDebt", 403, _S.FAILED_PRECONDITION),
    NoResources: ErrorSpec("NoResources", 403, _S.RESOURCE_EXHAUSTED),
    DuplicateTagKey: ErrorSpec("Duplicate.TagKey", 400, _S.INVALID_ARGUMENT),
    TooManyTags: ErrorSpec("NumberExceed.Tags", 400, _S.INVALID_ARGUMENT),
    InvalidTagKey: ErrorSpec("InvalidParameter.TagKey", 400, _S.INVALID_ARGUMENT),
    InvalidTagValue: ErrorSpec("InvalidParameter.TagValue", 400, _S.INVALID_ARGUMENT),
    EmptyTagKey: ErrorSpec("OperationDenied.KeyValueNotNull", 403, _S.INVALID_ARGUMENT),
    TooManyResourceIds: ErrorSpec("NumberExceed.ResourceIds", 400, _S.INVALID_ARGUMENT),
    DuplicateResourceId: ErrorSpec("Duplicate.ResourceId", 400, _S.INVALID_ARGUMENT),
    InvalidResourceType: ErrorSpec("InvalidParameter.ResourceType", 400, _S.INVALID_ARGUMENT),
    InvalidResourceGroup: ErrorSpec("InvalidResourceGroup", 400, _S.INVALID_ARGUMENT),
    ResourceNotFound: ErrorSpec("ResourceNotFound", 400, _S.NOT_FOUND),
    AccountNotFound: ErrorSpec("InvalidAccountId.NotFound", 404, _S.NOT_FOUND),
    AccountNameTaken: ErrorSpec("Duplicate.AccountName", 409, _S.ALREADY_EXISTS),
    InternalError: ErrorSpec("InternalError", 500, _S.INTERNAL),
    ServiceBusy: ErrorSpec("ServiceUnavailable", 503, _S.UNAVAILABLE),
    StorageFull: ErrorSpec("ServiceUnavailable.StorageFull", 503, _S.UNAVAILABLE),
    StorageReadOnly: ErrorSpec("ServiceUnavailable.StorageReadOnly", 503, _S.UNAVAILABLE),
    StorageUnreachable: ErrorSpec("ServiceUnavailable.Database", 503, _S.UNAVAILABLE),
}


def spec_for(error_class: type[EaisError]) -> ErrorSpec:
    try:
        return ERROR_TABLE[error_class]
    except KeyError:
        raise LookupError(f"{error_class.__name__} has no entry in ERROR_TABLE") from None


def leaf_error_classes() -> list[type[EaisError]]:
    """Every concrete error class (a class nothing else derives from)."""
    found: list[type[EaisError]] = []
    pending = [EaisError]
    while pending:
        cls = pending.pop()
        children = cls.__subclasses__()
        if children:
            pending.extend(children)
        else:
            found.append(cls)
    return found
