"""The inbox's per-peer transaction limit: a sliding minute, counted per origin."""

from __future__ import annotations

from federation.runtime.throttle import PeerThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_peer_gets_its_limit_per_minute_and_is_told_how_long_to_wait() -> None:
    clock = Clock()
    throttle = PeerThrottle(3, clock)
    assert [throttle.admit("https://b.example") for _ in range(3)] == [None, None, None]
    clock.now += 20
    assert throttle.admit("https://b.example") == 40
    clock.now += 39.5
    assert throttle.admit("https://b.example") == 1
    clock.now += 0.5  # the first three are a minute old
    assert throttle.admit("https://b.example") is None


def test_one_peer_past_its_limit_does_not_hold_up_another() -> None:
    throttle = PeerThrottle(1, Clock())
    assert throttle.admit("https://b.example") is None
    assert throttle.admit("https://b.example") == 60
    assert throttle.admit("https://c.example") is None


def test_a_refused_transaction_is_not_counted() -> None:
    clock = Clock()
    throttle = PeerThrottle(1, clock)
    throttle.admit("https://b.example")
    for _ in range(5):
        clock.now += 10
        throttle.admit("https://b.example")
    clock.now += 10  # 60 s after the one admitted, whatever was refused since
    assert throttle.admit("https://b.example") is None
