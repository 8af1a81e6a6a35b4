"""The Signatures view at a run of 2,000 envelopes, against the emulator at Certyneo's real rate (100/min,
burst 200; the view paces itself at a tenth): the run page shows the counts per status first, then who holds
things up, then every envelope 100 a page; one look costs a bounded number of requests (the emulator's own
request log says which), a warm page renders in under 2 s, and a later look lists only what changed."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.plugins import signatures
from airflow_provider_certyneo.plugins.pages import run_html, waiting_html
from tests.support.signatures import at_past, bulk_run, seed_envelopes

pytestmark = [pytest.mark.slow, pytest.mark.serial]

COUNT = 2_000


@pytest.fixture
def run_of_2000(
    airflow_db: None, certyneo_emulator: CertyneoEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("AIRFLOW__CERTYNEO__VIEW_CACHE_SECONDS", "30")
    signatures.LOOKS.clear()
    store = certyneo_emulator.server.runtime.store
    ids = seed_envelopes(store, COUNT, certyneo_emulator.base_url)
    hostile = ids[100]
    store.envelopes[hostile].subject = "<script>alert(1)</script>"
    for envelope_id in ids[200:203]:
        at_past(store, 1000, lambda e=envelope_id: store.decline_next(e, None, "Le salaire <b>est faux</b>"))
    at_past(store, 1000, lambda: store.decline_next(hostile, None, "wrong"))
    for envelope_id in ids[300:302]:
        at_past(store, 900, lambda e=envelope_id: store.expire(e))
    for envelope_id in ids[500:1000]:
        at_past(store, 800, lambda e=envelope_id: store.sign_next(e))
    run = bulk_run("signatures_at_scale", ids)
    yield {"run_id": run.run_id, "ids": ids, "emulator": certyneo_emulator, "store": store}
    signatures.LOOKS.clear()


def requests_after(emulator: CertyneoEmulator, seq: int) -> list[dict[str, Any]]:
    return [r for r in emulator.control.requests(since=seq) if r["route"] != "control"]


def last_seq(emulator: CertyneoEmulator) -> int:
    log = emulator.control.requests()
    return log[-1]["seq"] if log else 0


def test_a_run_of_2000_is_summarised_first_paged_and_read_in_bounded_looks(
    run_of_2000: dict[str, Any],
) -> None:
    emulator: CertyneoEmulator = run_of_2000["emulator"]
    run_id, ids = run_of_2000["run_id"], run_of_2000["ids"]
    seq = last_seq(emulator)

    started = time.perf_counter()
    text = run_html("signatures_at_scale", run_id)
    first_seconds = time.perf_counter() - started
    first = requests_after(emulator, seq)
    assert {(r["method"], r["path"].split("?")[0]) for r in first} == {("GET", "/api/v1/envelopes")}
    assert len(first) == COUNT // 100, "one pass over the run's envelopes, 100 a request"
    assert all(r["status"] == 200 for r in first), "no 429: the view keeps to its share"

    # the counts first, then who holds things up, then the envelopes, paged
    assert "2000 envelopes, 1494 still waiting." in text
    counts = text.index("envelopes per status")
    attention = text.index("Needs attention")
    everything = text.index("Every envelope")
    assert counts < attention < everything
    for status, count in [("SENT", 1494), ("COMPLETED", 500), ("DECLINED", 4), ("EXPIRED", 2)]:
        assert f'<td class="{status}">{status}</td><td>{count}</td>' in text[counts:attention]
    held_up = text[attention:everything]
    assert "Client 200 &lt;client200@example.com&gt;" in held_up
    assert "Le salaire &lt;b&gt;est faux&lt;/b&gt;" in held_up, "the decline reason, escaped"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in held_up
    assert "<script>" not in text
    assert "Client 300 &lt;client300@example.com&gt;" in held_up, "an expired envelope: who did not sign"
    # the envelopes pending longest: the first sent, with the signer whose turn it is
    assert held_up.index("Client 0 &lt;") < held_up.index("Client 1 &lt;") < held_up.index("Client 19 &lt;")
    assert "Client 20 &lt;" not in held_up
    assert held_up.index("DECLINED") < held_up.index("EXPIRED") < held_up.index(">SENT<")
    assert text.count("<h3>") == 100
    assert 'href="?page=2"' in text
    assert 'href="?page=20"' in text
    assert 'href="?page=21"' not in text
    assert "/sign/" not in text, "never a sign URL"

    # warm: no request, well under 2 s; other pages too
    seq = last_seq(emulator)
    started = time.perf_counter()
    again = run_html("signatures_at_scale", run_id)
    warm_seconds = time.perf_counter() - started
    last_page = run_html("signatures_at_scale", run_id, page=20)
    assert requests_after(emulator, seq) == []
    assert warm_seconds < 2.0, f"warm {warm_seconds:.2f} s (first {first_seconds:.2f} s)"
    assert again.count("<h3>") == 100
    assert "Page 20 of 20 (envelopes 1901–2000 of 2000)" in last_page
    assert "send_batch_3 [" not in last_page
    assert ">send_batch_3<" in last_page
    assert last_page.count("<h3>") == 100

    # later: a look lists only what changed since the last one (the last minutes of sending and this one)
    store = run_of_2000["store"]
    store.sign_next(ids[1999])
    signatures.LOOKS.expire()
    seq = last_seq(emulator)
    later = run_html("signatures_at_scale", run_id)
    assert len(requests_after(emulator, seq)) == 1, "a quiet run costs one request, whatever its size"
    assert "2000 envelopes, 1493 still waiting." in later
    assert re.search(r'<td class="COMPLETED">COMPLETED</td><td>501</td>', later)


def test_the_waiting_page_with_2000_waiting_stays_within_its_share(run_of_2000: dict[str, Any]) -> None:
    emulator: CertyneoEmulator = run_of_2000["emulator"]
    seq = last_seq(emulator)
    text = waiting_html({"signatures_at_scale"})
    first = requests_after(emulator, seq)
    assert len(first) == 15, "the SENT envelopes, 100 a request"
    assert all(r["status"] == 200 for r in first)
    assert "1494 waiting." in text
    assert text.count("<tr><td>") == 100
    assert 'href="?page=15"' in text
    assert 'href="?page=16"' not in text
    assert text.index("Contrat 0<") < text.index("Contrat 1<"), "oldest first"

    run_of_2000["store"].decline_next(run_of_2000["ids"][0], None, "non")
    signatures.LOOKS.expire()
    seq = last_seq(emulator)
    later = waiting_html({"signatures_at_scale"})
    assert len(requests_after(emulator, seq)) == 1, "then only what changed"
    assert "1493 waiting." in later
    assert "Contrat 0<" not in later
