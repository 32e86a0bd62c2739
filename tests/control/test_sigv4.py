"""SigV4 verification against requests signed by botocore (the AWS SDK's own signer)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from unittest import mock
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from esm.control.sigv4 import AuthFailure, SignedRequest, canonical_path, canonical_query, verify

KEY_ID, SECRET = "AKIAESMTESTKEY00001", "s3cr3t/with+chars=="
NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
SECRETS = {KEY_ID: SECRET}.get


def signed(
    method: str = "POST",
    url: str = "http://127.0.0.1:9109/2015-03-31/event-source-mappings",
    body: bytes = b'{"FunctionName": "orders"}',
    *,
    key_id: str = KEY_ID,
    secret: str = SECRET,
    region: str = "us-east-1",
    service: str = "lambda",
    at: datetime = NOW,
    headers: dict[str, str] | None = None,
) -> SignedRequest:
    """A request as botocore signs it, then as the server receives it."""
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    # botocore signs at its own clock's time: the test's moment instead.
    with mock.patch("botocore.auth.get_current_datetime", return_value=at.replace(tzinfo=None)):
        SigV4Auth(Credentials(key_id, secret), service, region).add_auth(request)
    parts = urlsplit(url)
    sent = [(name, value) for name, value in request.headers.items()]
    if not any(name.lower() == "host" for name, _ in sent):
        sent.append(("Host", parts.netloc))
    return SignedRequest(method, parts.path, parts.query, sent, body)


def check(request: SignedRequest, now: datetime = NOW) -> str:
    return verify(request, SECRETS, "us-east-1", "lambda", now)


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "http://127.0.0.1:9109/2015-03-31/event-source-mappings", b'{"FunctionName": "orders"}'),
        (
            "GET",
            "http://127.0.0.1:9109/2015-03-31/event-source-mappings/?FunctionName=orders&MaxItems=2",
            b"",
        ),
        # a function ARN in a query value and in the path: encoded characters are signed encoded again
        (
            "GET",
            "http://127.0.0.1:9109/2015-03-31/event-source-mappings?FunctionName=arn%3Aaws%3Alambda%3Aus-east-1"
            "%3A000000000000%3Afunction%3Aorders&EventSourceArn=arn%3Aaws%3Akinesis%3Aus-east-1%3A1%3Astream%2Fs",
            b"",
        ),
        (
            "GET",
            "http://127.0.0.1:9109/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af",
            b"",
        ),
        ("PUT", "http://127.0.0.1:9109/2015-03-31/event-source-mappings/0b6f-11", b'{"BatchSize": 10}'),
        ("DELETE", "http://localhost/2015-03-31/event-source-mappings/0b6f-11", b""),
        ("GET", "http://127.0.0.1:9109/2015-03-31/functions/?Marker=a%20b&Marker=a", b""),
    ],
)
def test_requests_botocore_signs_are_accepted(method: str, url: str, body: bytes) -> None:
    assert check(signed(method, url, body)) == KEY_ID


def test_a_clock_four_minutes_off_is_accepted() -> None:
    assert check(signed(at=NOW - timedelta(minutes=4))) == KEY_ID
    assert check(signed(at=NOW + timedelta(minutes=4))) == KEY_ID


def _without_auth(request: SignedRequest) -> SignedRequest:
    return replace(request, headers=[(n, v) for n, v in request.headers if n.lower() != "authorization"])


def _body(request: SignedRequest) -> SignedRequest:
    return replace(request, body=request.body + b" ")


def _query(request: SignedRequest) -> SignedRequest:
    return replace(request, raw_query="FunctionName=other")


def _path(request: SignedRequest) -> SignedRequest:
    return replace(request, raw_path=request.raw_path + "/x")


def _method(request: SignedRequest) -> SignedRequest:
    return replace(request, method="PUT")


def _header(request: SignedRequest) -> SignedRequest:
    return replace(request, headers=[(n, "evil" if n.lower() == "host" else v) for n, v in request.headers])


@pytest.mark.parametrize(
    ("request_", "error_type", "message"),
    [
        (_without_auth(signed()), "MissingAuthenticationTokenException", "Missing Authentication Token"),
        (signed(key_id="AKIAUNKNOWNKEY00001"), "UnrecognizedClientException", "security token"),
        (signed(secret="wrong"), "InvalidSignatureException", "does not match the signature"),
        (signed(region="eu-west-1"), "InvalidSignatureException", "valid region"),
        (signed(service="kinesis"), "InvalidSignatureException", "correct service: 'lambda'"),
        (signed(at=NOW - timedelta(minutes=6)), "InvalidSignatureException", "Signature expired"),
        (signed(at=NOW + timedelta(minutes=6)), "InvalidSignatureException", "Signature not yet current"),
        (_body(signed()), "InvalidSignatureException", "x-amz-content-sha256|does not match"),
        (_query(signed()), "InvalidSignatureException", "does not match the signature"),
        (_path(signed()), "InvalidSignatureException", "does not match the signature"),
        (_method(signed()), "InvalidSignatureException", "does not match the signature"),
        (_header(signed()), "InvalidSignatureException", "does not match the signature"),
    ],
    ids=[
        "unsigned",
        "unknown key",
        "wrong secret",
        "wrong region",
        "wrong service",
        "6 min old",
        "6 min ahead",
        "body changed",
        "query changed",
        "path changed",
        "method changed",
        "signed header changed",
    ],
)
def test_every_forgery_is_refused_with_awss_error(
    request_: SignedRequest, error_type: str, message: str
) -> None:
    with pytest.raises(AuthFailure, match=message) as caught:
        check(request_)
    assert caught.value.error_type == error_type
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic dXNlcjpwYXNz",
        "AWS4-HMAC-SHA256 Credential=AKIAESMTESTKEY00001/20261207/us-east-1/lambda/aws4_request",
        f"AWS4-HMAC-SHA256 Credential={KEY_ID}/20261207/us-east-1/lambda, SignedHeaders=host, "
        f"Signature={'0' * 64}",
    ],
)
def test_a_malformed_authorization_is_an_invalid_signature(authorization: str) -> None:
    request = signed()
    headers = [(n, authorization if n.lower() == "authorization" else v) for n, v in request.headers]
    with pytest.raises(AuthFailure) as caught:
        check(replace(request, headers=headers))
    assert caught.value.error_type == "InvalidSignatureException"


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("/2015-03-31/functions/a%3Ab", "/2015-03-31/functions/a%253Ab"),
        ("/a/./b/../c", "/a/c"),
        ("//a//b/", "/a/b/"),
        ("/", "/"),
        ("/~user/x y", "/~user/x%20y"),
    ],
)
def test_canonical_path(raw: str, canonical: str) -> None:
    assert canonical_path(raw) == canonical


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("", ""),
        ("b=2&a=1", "a=1&b=2"),
        ("a=2&a=1", "a=1&a=2"),
        ("k=a%3Ab&e", "e=&k=a%3Ab"),
        ("s=a%20b&t=~x*", "s=a%20b&t=~x%2A"),
    ],
)
def test_canonical_query(raw: str, canonical: str) -> None:
    assert canonical_query(raw) == canonical
