"""The webhook receiver as hostile input meets it: only deliveries signed with the connection's secret,
fresh and not seen before, become asset events; nothing else does, and nothing gets a 5xx."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.hooks.certyneo import CertyneoHook
from tests.support.polling import wait_until
from tests.webhooks.conftest import OTHER_SECRET, SECRET, Receiver, asset_events, delivery, sign

# recording asset events uses Airflow's asset manager: checked on the oldest supported Airflow too
pytestmark = pytest.mark.smoke


def test_a_signed_completion_becomes_one_asset_event_without_sign_urls(receiver: Receiver) -> None:
    before = len(asset_events())
    body = delivery()
    answer = receiver.post(body, sign(body))
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "recorded"
    events = asset_events()
    assert len(events) == before + 1
    payload = events[-1]["payload"]
    sent = json.loads(body)
    assert payload["envelope_id"] == sent["data"]["envelope"]["id"]
    assert payload["event_id"] == sent["id"]
    assert payload["subject"] == "Contrat de prestation"
    assert payload["recipients"][0]["email"] == "marie@example.com"
    assert "secret-bearer-token" not in json.dumps(events[-1]), "a sign URL (bearer link) was recorded"


def test_a_replayed_delivery_produces_no_second_event(receiver: Receiver) -> None:
    body = delivery()
    assert receiver.post(body, sign(body)).json()["status"] == "recorded"
    count = len(asset_events())
    replay = receiver.post(body, sign(body))
    assert replay.status_code == 200
    assert replay.json()["status"] == "duplicate"
    assert len(asset_events()) == count


def test_one_delivery_arriving_many_times_at_once_becomes_one_event(receiver: Receiver) -> None:
    """Certyneo retrying while the first try is still being answered, or two API-server workers given the
    same delivery: only one records it, whatever the database (the test session's is SQLite)."""
    body = delivery()
    count = len(asset_events())
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: receiver.post(body, sign(body)), range(8)))
    assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
    assert sorted(a.json()["status"] for a in answers) == ["duplicate"] * 7 + ["recorded"]
    assert len(asset_events()) == count + 1


def test_a_declined_envelope_goes_to_the_declined_asset_only_if_a_dag_uses_it(receiver: Receiver) -> None:
    body = delivery("envelope.declined")
    answer = receiver.post(body, sign(body))
    assert answer.status_code == 200
    assert answer.json()["status"] == "no_consumer"
    assert asset_events("declined") == []


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong secret", 401),
        ("other connection's secret", 401),
        ("no signature", 401),
        ("empty body", 401),
        ("stale", 401),
        ("dated in the future", 401),
        ("unknown connection", 401),
        ("signed non-JSON", 400),
        ("signed JSON that is not an event", 400),
        ("oversized", 413),
        ("oversized without length", 413),
    ],
)
def test_hostile_deliveries_are_refused_and_make_no_event(
    receiver: Receiver, case: str, expected: int
) -> None:
    before = len(asset_events())
    body, signature, conn_id = delivery(), None, "certyneo_default"
    if case == "wrong secret":
        signature = sign(body, "whsec_wrong")
    elif case == "other connection's secret":
        signature = sign(body, OTHER_SECRET)
    elif case == "empty body":
        body, signature = b"", sign(b"", "")
    elif case == "stale":
        body = delivery(age=3600)
        signature = sign(body)
    elif case == "dated in the future":
        body = delivery(age=-3600)
        signature = sign(body)
    elif case == "unknown connection":
        signature, conn_id = sign(body), "no_such_connection"
    elif case == "signed non-JSON":
        body = b"<xml>not json</xml>"
        signature = sign(body)
    elif case == "signed JSON that is not an event":
        body = b'{"hello": "world"}'
        signature = sign(body)
    elif case == "oversized":
        body = b"{" + b" " * (2 * 1024 * 1024) + b"}"
        signature = sign(body)
    if case == "oversized without length":
        big = (b"x" * 65536 for _ in range(40))
        answer = receiver.client.post(
            receiver.url(), content=big, headers={"X-Certyneo-Signature": sign(b"")}
        )
    else:
        answer = receiver.post(body, signature, conn_id)
    assert answer.status_code == expected, answer.text
    assert len(asset_events()) == before
    assert SECRET not in answer.text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.binary(max_size=2048),
    signature=st.one_of(st.none(), st.text(max_size=80), st.just("sha256=" + "0" * 64)),
    conn_id=st.sampled_from(["certyneo_default", "certyneo_other", "x", "%00", "a" * 300]),
)
def test_fuzzed_deliveries_never_get_a_5xx_nor_make_an_event(
    receiver: Receiver, body: bytes, signature: str | None, conn_id: str
) -> None:
    before = len(asset_events())
    try:
        answer = receiver.post(body, signature, conn_id)
    except (ValueError, httpx.LocalProtocolError):  # a header value httpx itself refuses to send
        return
    assert answer.status_code in (400, 401, 404, 413, 422), answer.text
    assert len(asset_events()) == before


def test_the_emulator_delivers_a_signature_to_the_receiver(
    receiver: Receiver, certyneo_emulator: CertyneoEmulator, pdf_file: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: the webhook registered with the emulator, its secret in the connection, a signature in
    the emulator arrives as an asset event with the envelope id."""
    with CertyneoHook() as hook:
        webhook = hook.create_webhook(receiver.url(), ["envelope.completed"])
        monkeypatch.setenv(
            "AIRFLOW_CONN_CERTYNEO_DEFAULT",
            certyneo_emulator.connection_json(webhook_secret=webhook["secret"]),
        )
        document = hook.upload_document(pdf_file)
        envelope = hook.create_envelope(
            "Contrat", [document["id"]], [{"email": "marie@example.com", "name": "Marie Dubois"}]
        )
        hook.send_envelope(envelope["id"])
    certyneo_emulator.control.sign(envelope["id"])
    wait_until(
        lambda: any(e["payload"]["envelope_id"] == envelope["id"] for e in asset_events()),
        timeout=15,
        interval=0.1,
        what="the asset event of the signed envelope",
        detail=certyneo_emulator.control.webhook_deliveries,
    )


def test_the_secret_is_read_once_for_many_deliveries_and_a_new_one_works_at_once(
    receiver: Receiver, certyneo_emulator: CertyneoEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.models.connection import Connection

    from airflow_provider_certyneo.plugins import receiver as plugin

    reads: list[str] = []
    read = Connection.get_connection_from_secrets

    def counted(conn_id: str) -> Connection:
        reads.append(conn_id)
        return read(conn_id)

    monkeypatch.setattr(plugin, "_secrets", {})
    monkeypatch.setattr(Connection, "get_connection_from_secrets", counted)
    for _ in range(5):
        body = delivery()
        assert receiver.post(body, sign(body)).json()["status"] == "recorded"
    assert reads == ["certyneo_default"], "the secret is read per delivery"

    new = "whsec_" + "n" * 32
    monkeypatch.setenv("AIRFLOW_CONN_CERTYNEO_DEFAULT", certyneo_emulator.connection_json(webhook_secret=new))
    body = delivery()
    assert receiver.post(body, sign(body, new)).json()["status"] == "recorded", "the new secret waits"
    body = delivery()
    assert receiver.post(body, sign(body)).status_code == 401, "the old secret still works"
