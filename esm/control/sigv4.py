"""AWS Signature Version 4, verified: is a request signed by one of our keys, for this region and
service, recently? Pure: the request and the clock come in; no I/O.

The canonical request is built the way AWS documents it (and botocore signs): the method; the
path as received, normalized and URI-encoded again; the query parameters decoded, re-encoded
with AWS's unreserved set and sorted; the signed headers, lower-cased with their values trimmed;
the payload's SHA-256 (or the client's `X-Amz-Content-SHA256`, which must match the body). The
string to sign and the signing key follow (HMAC chain over date, region, service). Signatures
are compared in constant time. Failures raise `AuthFailure` with AWS's error type and a message
that never contains a secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

from esm.sigv4_signing import ALGORITHM, signature, string_to_sign

# AWS refuses a request whose time is further than this from its own.
MAX_SKEW = timedelta(minutes=5)

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*Signature=(?P<signature>[0-9a-f]{64})\s*$"
)
_AMZ_DATE = "%Y%m%dT%H%M%SZ"


class AuthFailure(Exception):
    """The request is not authenticated: HTTP 403 with AWS's error type."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def _missing() -> AuthFailure:
    return AuthFailure("MissingAuthenticationTokenException", "Missing Authentication Token")


def _invalid(message: str) -> AuthFailure:
    return AuthFailure("InvalidSignatureException", message)


@dataclass(frozen=True)
class SignedRequest:
    """What verification needs of an HTTP request, as it arrived."""

    method: str
    # The path as sent (still percent-encoded) and the raw query string (without '?').
    raw_path: str
    raw_query: str
    # Every header (names in any case), each name possibly more than once.
    headers: Sequence[tuple[str, str]]
    body: bytes

    def header_values(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def header(self, name: str) -> str | None:
        values = self.header_values(name)
        return values[0] if values else None


def verify(
    request: SignedRequest,
    secrets: Callable[[str], str | None],
    region: str,
    service: str,
    now: datetime,
) -> str:
    """The access key id that signed `request`; AuthFailure otherwise.

    `secrets`: the secret of an access key id, None for a key we do not know."""
    authorization = request.header("Authorization")
    if authorization is None:
        raise _missing()
    match = _AUTHORIZATION.match(authorization.strip())
    if match is None:
        if not authorization.startswith(ALGORITHM):
            raise _invalid(f"Only {ALGORITHM} is accepted as the Authorization algorithm")
        raise _invalid(
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters"
        )
    key_id, scope_date, scope_region, scope_service, terminator = _credential(match["credential"])
    secret = secrets(key_id)
    if secret is None:
        raise AuthFailure(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    if scope_region != region:
        raise _invalid(f"Credential should be scoped to a valid region, not '{scope_region}'.")
    if scope_service != service:
        raise _invalid(f"Credential should be scoped to correct service: '{service}'.")
    if terminator != "aws4_request":
        raise _invalid("Credential should be scoped with a valid terminator: 'aws4_request'.")
    amz_date = _request_time(request)
    if amz_date.strftime("%Y%m%d") != scope_date:
        raise _invalid(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{scope_date}' != '{amz_date.strftime('%Y%m%d')}'"
        )
    _check_skew(amz_date, now)
    signed = match["signed"].split(";")
    if "host" not in signed:
        raise _invalid("'Host' must be a 'SignedHeader' in the AWS Authorization.")
    canonical = canonical_request(request, signed, payload_hash(request))
    scope = f"{scope_date}/{region}/{service}/aws4_request"
    to_sign = string_to_sign(amz_date.strftime(_AMZ_DATE), scope, canonical)
    expected = signature(secret, scope_date, region, service, to_sign)
    if not hmac.compare_digest(expected, match["signature"]):
        raise _invalid(
            "The request signature we calculated does not match the signature you provided. Check your "
            "AWS Secret Access Key and signing method. Consult the service documentation for details."
        )
    return key_id


def _credential(credential: str) -> tuple[str, str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or not all(parts):
        raise _invalid(
            f"Credential should be of the form 'ACCESS_KEY/YYYYMMDD/REGION/SERVICE/aws4_request', "
            f"got a value with {len(parts)} parts"
        )
    return parts[0], parts[1], parts[2], parts[3], parts[4]


def _request_time(request: SignedRequest) -> datetime:
    value = request.header("X-Amz-Date")
    if value is None:
        raise _invalid("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    try:
        return datetime.strptime(value.strip(), _AMZ_DATE).replace(tzinfo=UTC)
    except ValueError as err:
        raise _invalid(
            f"X-Amz-Date must be in the ISO8601 basic format YYYYMMDD'T'HHMMSS'Z', got {value!r}"
        ) from err


def _check_skew(signed_at: datetime, now: datetime) -> None:
    stamp = signed_at.strftime(_AMZ_DATE)
    if signed_at < now - MAX_SKEW:
        raise _invalid(
            f"Signature expired: {stamp} is now earlier than {(now - MAX_SKEW).strftime(_AMZ_DATE)} "
            f"({now.strftime(_AMZ_DATE)} - 5 min.)"
        )
    if signed_at > now + MAX_SKEW:
        raise _invalid(
            f"Signature not yet current: {stamp} is still later than {(now + MAX_SKEW).strftime(_AMZ_DATE)} "
            f"({now.strftime(_AMZ_DATE)} + 5 min.)"
        )


def payload_hash(request: SignedRequest) -> str:
    actual = hashlib.sha256(request.body).hexdigest()
    claimed = request.header("X-Amz-Content-SHA256")
    if claimed is not None and claimed.strip() != actual:
        raise _invalid("The provided 'x-amz-content-sha256' header does not match what was computed.")
    return actual


def canonical_request(request: SignedRequest, signed_headers: Sequence[str], body_hash: str) -> str:
    headers = _canonical_headers(request, signed_headers)
    return "\n".join(
        [
            request.method.upper(),
            canonical_path(request.raw_path),
            canonical_query(request.raw_query),
            headers + "\n",
            ";".join(signed_headers),
            body_hash,
        ]
    )


def canonical_path(raw_path: str) -> str:
    """The path as sent, without dot segments, URI-encoded once more (every AWS service but S3)."""
    segments: list[str] = []
    for segment in raw_path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    path = "/" + "/".join(segments)
    if raw_path.endswith("/") and path != "/":
        path += "/"
    return quote(path, safe="/~")


def canonical_query(raw_query: str) -> str:
    pairs = []
    for item in raw_query.split("&") if raw_query else ():
        key, _, value = item.partition("=")
        pairs.append((_aws_quote(unquote(key)), _aws_quote(unquote(value))))
    return "&".join(f"{key}={value}" for key, value in sorted(pairs))


def _aws_quote(text: str) -> str:
    return quote(text, safe="-_.~")


def _canonical_headers(request: SignedRequest, signed_headers: Sequence[str]) -> str:
    lines = []
    for name in signed_headers:
        values = request.header_values(name)
        if not values:
            raise _invalid(f"The signed header {name!r} is not in the request.")
        lines.append(f"{name}:{','.join(' '.join(value.split()) for value in values)}")
    return "\n".join(lines)


def secrets_of(keys: Mapping[str, str]) -> Callable[[str], str | None]:
    return keys.get
