"""RFC 3339 round trips and the server clock read from ``Date`` headers."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from airflow_provider_certyneo.client.timestamps import ServerClock, parse_rfc3339, rfc3339


def test_rfc3339_round_trip() -> None:
    moment = datetime(2026, 11, 28, 17, 5, 3, 123000, tzinfo=timezone.utc)
    assert rfc3339(moment) == "2026-11-28T17:05:03.123Z"
    assert parse_rfc3339(rfc3339(moment)) == moment
    assert parse_rfc3339("2026-11-28T18:05:03+01:00") == moment.replace(microsecond=0)
    with pytest.raises(ValueError, match="known_as_of must be an RFC 3339 timestamp"):
        parse_rfc3339("yesterday", "known_as_of")


def test_server_clock_follows_the_date_header_and_errs_early() -> None:
    clock = ServerClock()
    assert not clock.observed
    received = time.time()
    server = datetime.fromtimestamp(received, timezone.utc) - timedelta(seconds=90)
    clock.observe(format_datetime(server, usegmt=True), received)
    assert clock.observed
    estimate = clock.at(received)
    assert server - timedelta(seconds=1) <= estimate <= server + timedelta(milliseconds=1)
    before = time.time()
    ahead = (clock.now() - estimate).total_seconds()
    after = time.time()
    assert before - received - 0.001 <= ahead <= after - received + 0.001


@pytest.mark.parametrize("header", [None, "", "not a date", "Mon, 99 Foo 2026 25:61:00"])
def test_server_clock_ignores_what_is_not_a_date(header: str | None) -> None:
    clock = ServerClock()
    clock.observe(header, time.time())
    assert not clock.observed
    assert clock.offset == 0.0
