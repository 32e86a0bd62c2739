from __future__ import annotations

import pytest

from esm.worker.address import InvalidListenAddress, ListenAddress, parse_listen


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [("127.0.0.1:50051", "127.0.0.1", 50051), ("[::1]:7000", "[::1]", 7000), ("localhost:0", "localhost", 0)],
)
def test_parses_host_and_port(text: str, host: str, port: int) -> None:
    address = parse_listen(text)
    assert address == ListenAddress(host, port)
    assert str(address) == text


@pytest.mark.parametrize("text", ["50051", ":50051", "127.0.0.1:", "127.0.0.1:http", "h:70000", "::1:5000"])
def test_rejects_what_is_not_host_colon_port(text: str) -> None:
    with pytest.raises(InvalidListenAddress, match="--listen"):
        parse_listen(text)


def test_with_port_keeps_the_host() -> None:
    assert str(parse_listen("0.0.0.0:0").with_port(4321)) == "0.0.0.0:4321"
