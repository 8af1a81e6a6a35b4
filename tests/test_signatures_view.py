"""The Signatures view's pages as pure functions: what they show, escaped, without sign URLs; which
envelopes a run's XComs name. (The real pages, behind Airflow's login, are checked in tests/deployment/
test_ui.py.)"""

from __future__ import annotations

from typing import Any

from airflow_provider_certyneo.client.outcomes import recipients_of
from airflow_provider_certyneo.plugins.pages import run_page, waiting_page
from airflow_provider_certyneo.plugins.signatures import Made, Row, made_from_xcoms


def envelope(envelope_id: str, sent_at: str, subject: str = "Contrat") -> dict[str, Any]:
    return {
        "id": envelope_id,
        "subject": subject,
        "status": "SENT",
        "signingOrder": "SEQUENTIAL",
        "sentAt": sent_at,
        "updatedAt": sent_at,
        "recipients": [
            {
                "email": "a@example.com",
                "name": "A <b>",
                "role": "SIGNER",
                "order": 1,
                "status": "SIGNED",
                "signedAt": sent_at,
                "signUrl": "https://certyneo.com/sign/BEARER-A",
            },
            {
                "email": "rh@example.com",
                "name": "RH",
                "role": "SIGNER",
                "order": 2,
                "status": "PENDING",
                "signUrl": "https://certyneo.com/sign/BEARER-B",
            },
        ],
    }


def row(envelope_id: str, sent_at: str, subject: str = "Contrat") -> Row:
    made = Made(envelope_id, "onboarding", "manual__1", "send", 0, url=f"https://dash/{envelope_id}")
    state = envelope(envelope_id, sent_at, subject)
    return Row(made, envelope=state, recipients=recipients_of(state))


def test_run_page_shows_recipients_escaped_and_never_a_sign_url() -> None:
    text = run_page("onboarding", "manual__1", [row("env_1", "2026-11-29T10:00:00Z", "<script>x</script>")])
    assert "&lt;script&gt;x&lt;/script&gt;" in text
    assert "<script>" not in text
    assert "A &lt;b&gt;" in text
    assert "1 of 2 signed: A &lt;b&gt; signed at 10:00; waiting for RH &lt;rh@example.com&gt;" in text
    assert "holding it up: their turn" in text
    assert 'href="/dags/onboarding/runs/manual__1/tasks/send/mapped/0"' in text
    assert "BEARER" not in text
    assert "/sign/" not in text


def test_no_certyneo_data_is_said_plainly() -> None:
    assert "No Certyneo data for this run" in run_page("other", "manual__2", [])
    assert "No Certyneo envelope is waiting for a signature." in waiting_page([], [], 3)


def test_waiting_page_lists_oldest_first_with_who_holds_it_up() -> None:
    rows = [row("env_old", "2026-11-20T08:00:00Z", "Old"), row("env_new", "2026-11-29T08:00:00Z", "New")]
    text = waiting_page(rows, ["connection x: Certyneo could not be read"], 2)
    assert text.index("Old") < text.index("New")
    assert "RH &lt;rh@example.com&gt;" in text
    assert "2 waiting." in text
    assert "Certyneo could not be read" in text


def test_envelopes_are_found_in_the_runs_xcoms() -> None:
    rows = [
        ("d", "r", "create", -1, "envelope_id", "env_1"),
        ("d", "r", "send", -1, "envelope_id", "env_1"),
        ("d", "r", "send", -1, "certyneo_conn_id", "other_conn"),
        ("d", "r", "bulk", -1, "results", [{"envelope_id": "env_2"}, {"envelope_id": None}]),
        ("d", "r", "bulk", -1, "certyneo_conn_id", "bulk_conn"),
    ]
    made = {m.envelope_id: m for m in made_from_xcoms(rows)}
    assert set(made) == {"env_1", "env_2"}
    assert made["env_2"].conn_id == "bulk_conn"
    assert made["env_2"].task_id == "bulk"
    assert made["env_1"].task_id == "send", "the task that sent it, rather than the one that created it"
