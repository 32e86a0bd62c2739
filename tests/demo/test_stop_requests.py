from __future__ import annotations

import os
import signal

import pytest

from esm.demo.stop_requests import StopRequested, StopRequests, handled_signals


def test_first_signal_stops_producing_second_skips_the_drain() -> None:
    # What was there before (the default handler, or SIG_IGN when the suite runs as a background job).
    before = signal.getsignal(signal.SIGINT)
    with handled_signals(StopRequests()) as stops:
        assert not stops.stopping
        stops.raise_if_stopping("starting")  # nothing requested: no error
        os.kill(os.getpid(), signal.SIGTERM)
        assert stops.stopping and not stops.skip_drain
        with pytest.raises(StopRequested, match="stopped by a signal while starting the broker"):
            stops.raise_if_stopping("starting the broker")
        os.kill(os.getpid(), signal.SIGINT)
        assert stops.skip_drain
    assert signal.getsignal(signal.SIGINT) is before  # restored
