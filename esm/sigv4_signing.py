"""AWS Signature Version 4 primitives shared by the side that signs (esm's own calls to AWS's
JSON APIs) and the side that verifies (the control API): the signing key's HMAC chain and the
signature over a string to sign. Pure: no clock, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

ALGORITHM = "AWS4-HMAC-SHA256"


@lru_cache(maxsize=64)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The key for one day, region and service (`date` is YYYYMMDD). Cached: a client signs every
    request of a day with the same key, and the chain is four HMACs."""
    key = _hmac(f"AWS4{secret}".encode(), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def signature(secret: str, date: str, region: str, service: str, string_to_sign: str) -> str:
    key = signing_key(secret, date, region, service)
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def string_to_sign(amz_date: str, scope: str, canonical_request: str) -> str:
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()
