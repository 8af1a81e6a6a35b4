"""Progress lines of the waits: the pure ``progress()`` text, and one line per change in a real wait."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_certyneo.client.outcomes import holding_up, progress
from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from airflow_provider_certyneo.hooks.certyneo import CertyneoHook
from airflow_provider_certyneo.triggers.envelope import CertyneoEnvelopeTrigger
from tests.support.polling import await_until

TWO = [
    {"email": "marie@example.com", "name": "Marie Dubois", "order": 1},
    {"email": "rh@example.com", "name": "Ressources humaines", "order": 2},
]


def envelope(state: str = "SENT", **second: Any) -> dict[str, Any]:
    return {
        "id": "env_1",
        "subject": "Contrat",
        "status": state,
        "signingOrder": "SEQUENTIAL",
        "sentAt": "2026-11-29T09:40:00.000Z",
        "updatedAt": "2026-11-29T10:02:00.000Z",
        "expiresAt": "2026-12-29T09:40:00.000Z",
        "recipients": [
            {
                **TWO[0],
                "role": "SIGNER",
                "status": "SIGNED",
                "signedAt": "2026-11-29T10:02:10.000Z",
                "signUrl": "https://certyneo.com/sign/BEARER1",
            },
            {
                **TWO[1],
                "role": "SIGNER",
                "status": "PENDING",
                "signedAt": None,
                "signUrl": "https://certyneo.com/sign/BEARER2",
                **second,
            },
            {"email": "cc@example.com", "name": "Copie", "role": "CC", "order": 3, "status": "PENDING"},
        ],
    }


def test_sequential_line_names_who_signed_and_whose_turn_it_is() -> None:
    assert progress(envelope()) == (
        "1 of 2 signed: Marie Dubois signed at 10:02; waiting for Ressources humaines <rh@example.com> "
        "(sequential, their turn since 10:02)"
    )
    waiting, since = holding_up(envelope())
    assert [r["email"] for r in waiting] == ["rh@example.com"]
    assert since == "2026-11-29T10:02:10.000Z"


def test_declines_expiry_and_voids_say_who_when_and_why() -> None:
    declined = progress(envelope("DECLINED", status="DECLINED", declineReason="wrong salary"))
    assert "declined by Ressources humaines <rh@example.com> at 10:02: wrong salary" in declined
    assert "expired at 29 Dec 09:40 unsigned by Ressources humaines <rh@example.com>" in progress(
        envelope("EXPIRED")
    )
    assert "voided by the sender at 10:02 before Ressources humaines <rh@example.com> signed" in progress(
        envelope("VOIDED")
    )
    parallel = {**envelope(), "signingOrder": "PARALLEL"}
    assert "(parallel, sent since 09:40)" in progress(parallel)
    for status in ("SENT", "DECLINED", "EXPIRED", "VOIDED", "COMPLETED"):
        assert "/sign/" not in progress(envelope(status)), "a sign URL is a bearer link: never logged"


@pytest.mark.asyncio
@pytest.mark.parametrize("known", [False, True], ids=["read_first", "known_as_of"])
async def test_a_two_signer_sequential_wait_logs_one_line_per_change(
    certyneo_emulator: CertyneoEmulator, pdf_file: Path, capsys: pytest.CaptureFixture[str], known: bool
) -> None:
    with CertyneoHook() as hook:
        draft = hook.create_envelope(
            "Contrat", [hook.upload_document(pdf_file)["id"]], TWO, signing_order="SEQUENTIAL"
        )
        sent = hook.send_envelope(draft["id"])
    envelope_id = draft["id"]
    trigger = CertyneoEnvelopeTrigger(
        envelope_id, poll_interval=0.1, known_as_of=sent["updatedAt"] if known else None
    )

    control = certyneo_emulator.control

    async def polls_after(count: int) -> None:
        """Until ``count`` more list requests: the second starts only once the first has been handed out."""
        start = (await asyncio.to_thread(control.counters))["requests"].get("GET /api/v1/envelopes", 0)

        async def polled() -> bool:
            counters = await asyncio.to_thread(control.counters)
            return bool(counters["requests"].get("GET /api/v1/envelopes", 0) >= start + count)

        await await_until(
            polled, timeout=15, interval=0.05, what=f"{count} more polls (the wait stopped polling)"
        )

    async def sign_one_by_one() -> None:
        for email in ("marie@example.com", "rh@example.com"):
            await polls_after(2)  # the wait has seen the envelope as it is now
            await asyncio.to_thread(control.sign, envelope_id, email)

    signing = asyncio.create_task(sign_one_by_one())
    event = await asyncio.wait_for(anext(trigger.run()), 20)
    await signing
    assert event.payload["status"] == "success"
    # triggers log through structlog, to stdout here
    out = capsys.readouterr().out
    lines = [
        line[line.index("envelope ") :] for line in out.splitlines() if f"envelope {envelope_id}: " in line
    ]
    expected = [
        "0 of 2 signed; waiting for Marie Dubois <marie@example.com> (sequential, their turn since",
        "1 of 2 signed: Marie Dubois signed at",
        "2 of 2 signed: Marie Dubois signed at",
    ]
    if known:
        expected = expected[1:]  # the operator logged the first line before deferring
    assert len(lines) == len(expected), lines
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(f"envelope {envelope_id}: {start}"), line
    assert "waiting for Ressources humaines <rh@example.com> (sequential, their turn since" in lines[-2]
    assert "completed at" in lines[-1]
