"""Lambda's errors as the API answers them: HTTP status, `x-amzn-ErrorType`, and a JSON body
(`{"Type": "User", "message": ...}`), so an AWS SDK raises its modelled exception."""

from __future__ import annotations

# Lambda's error types and their HTTP status (botocore's service model for `lambda`).
STATUS = {
    "InvalidParameterValueException": 400,
    "InvalidRequestContentException": 400,
    "RequestTooLargeException": 413,
    "UnknownOperationException": 404,
    "ResourceInUseException": 400,
    "UnrecognizedClientException": 403,
    "InvalidSignatureException": 403,
    "MissingAuthenticationTokenException": 403,
    "ResourceNotFoundException": 404,
    "ResourceConflictException": 409,
    "TooManyRequestsException": 429,
    "ServiceException": 500,
}
# Errors that are the caller's fault carry "Type": "User".
_SERVICE_FAULTS = {"ServiceException"}


class ApiError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message

    @property
    def status(self) -> int:
        return STATUS[self.error_type]

    def body(self) -> dict[str, str]:
        fault = "Service" if self.error_type in _SERVICE_FAULTS else "User"
        # Lambda spells it `message` for most types and `Message` for some; SDKs read either.
        return {"Type": fault, "message": self.message, "Message": self.message}


def invalid(message: str) -> ApiError:
    return ApiError("InvalidParameterValueException", message)


def not_found(message: str) -> ApiError:
    return ApiError("ResourceNotFoundException", message)


def conflict(message: str) -> ApiError:
    return ApiError("ResourceConflictException", message)


def in_use(message: str) -> ApiError:
    return ApiError("ResourceInUseException", message)
