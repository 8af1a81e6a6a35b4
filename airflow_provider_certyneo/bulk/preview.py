"""A bulk run's preview: every row judged as the real run would judge it, and nothing sent.

The checks are the real run's own — the rows as :mod:`.manifest` reads them (subjects, e-mails, roles,
recipient rules, duplicates), the PDFs through the check the upload makes (exists, is a PDF, at most
25 MiB), the journal (rows an earlier try sent or half did) and, when the journal has rows, the one list
request the real run makes to find envelopes whose journal line was lost. It makes no other request, and
none that changes anything; with an empty journal, none at all.

What it returns a person can judge: contracts, distinct PDFs, recipients, what an earlier run already sent,
each row with a problem (its field and the fix), the requests the send will cost and how long that takes
at the key's rate.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from airflow_provider_certyneo.bulk.fingerprint import Inspection
from airflow_provider_certyneo.bulk.journal import Journal
from airflow_provider_certyneo.bulk.manifest import Contract
from airflow_provider_certyneo.bulk.pipeline import SharedUploads, already_made, owner_of
from airflow_provider_certyneo.bulk.progress import duration
from airflow_provider_certyneo.client.files import InspectedPdf
from airflow_provider_certyneo.client.settings import CertyneoSettings
from airflow_provider_certyneo.hooks.certyneo_async import CertyneoAsyncHook

SHOWN_PROBLEMS = 50
LIST_PAGE = 100  # envelopes per page of the list request a resumed run makes
FIELD = re.compile(r"^(pdf|subject|message|signing_order|recipients(?:\[\d+\]\.\w+)?)\b")
FIXES = {
    "pdf": "put the PDF at that path, or correct the row's pdf column (relative paths are read from the "
    "manifest's folder)",
    "subject": "give the row a subject of 1 to 200 characters, different from every other row's",
    "recipients": "list at least one SIGNER with an e-mail and a name (signer_email and signer_name columns, "
    "or recipients as a JSON list)",
    "email": "correct the e-mail address in the manifest",
    "name": "give the recipient's full name",
    "role": "use a role such as SIGNER or CC",
    "order": "number the recipients 1, 2, … in signing order",
    "message": "shorten the message to at most 5,000 characters",
    "signing_order": "use PARALLEL or SEQUENTIAL",
    "row_id": "give each row its own row_id",
    "row": "make the row a mapping (a JSON object) with pdf, subject and recipients",
}


@dataclass
class Problem:
    """A row the send would refuse: which, the field, what is wrong, and what to do about it."""

    row: str
    field: str
    error: str
    fix: str


def problem(row: str, error: str, field: str | None = None) -> Problem:
    """The field a check's message names (its messages start with it), and the fix for that field."""
    if field is None:
        match = FIELD.match(error)
        if match:
            field = match.group(1)
        elif error.startswith("row id"):
            field = "row_id"
        elif error.startswith("same subject and recipients"):
            field = "subject"
        else:
            field = "row"
    family = field.rsplit(".", 1)[-1] if "." in field else field.split("[", 1)[0]
    return Problem(row, field, error, FIXES.get(family, FIXES["row"]))


@dataclass
class Cost:
    """The requests the real run will make, by kind."""

    uploads: int = 0
    creates: int = 0
    sends: int = 0
    lookups: int = 0

    @property
    def total(self) -> int:
        return self.uploads + self.creates + self.sends + self.lookups


def estimate(requests: int, settings: CertyneoSettings) -> dict[str, Any]:
    """How long ``requests`` take at the key's pace: with its bucket full at the start (the burst is free)
    and, at most, with it empty."""
    per_second = settings.rate_limit_per_minute / 60.0
    best = max(0, requests - settings.rate_limit_burst) / per_second
    worst = requests / per_second
    return {
        "rate_per_minute": settings.rate_limit_per_minute,
        "burst": settings.rate_limit_burst,
        "seconds": round(best, 1),
        "seconds_at_most": round(worst, 1),
        "text": f"about {duration(best)} at the key's rate ({settings.rate_limit_per_minute:g}/min, burst "
        f"{settings.rate_limit_burst}); up to {duration(worst)} if the key's bucket is empty when it starts",
    }


async def preview_all(
    conn_id: str, contracts: list[Contract], journal: Journal, inspected: dict[str, Inspection]
) -> dict[str, Any]:
    """Judge every row as :func:`~.pipeline.send_all` would, sending nothing. ``inspected``: each PDF's
    check (:func:`~.fingerprint.inspect_all`). Returns the summary (see :func:`summary_text`)."""
    async with CertyneoAsyncHook(conn_id) as hook:
        settings = await hook.asettings()
        uploads = SharedUploads(hook, journal, owner_of(settings))
        existing = await already_made(hook, journal) if journal.rows else {}
    cost = Cost(lookups=max(1, -(-len(existing) // LIST_PAGE)) if journal.rows else 0)
    problems: list[Problem] = []
    already_sent: list[str] = []
    on_server: list[str] = []
    half_done: list[str] = []
    to_send: list[Contract] = []
    pdfs: set[str] = set()
    planned: set[str] = set()  # PDFs (by SHA-256) this preview counted an upload for
    for contract in contracts:
        state = journal.rows.get(contract.row, {})
        if contract.error is not None:
            problems.append(problem(contract.row, contract.error))
            continue
        if state.get("status") == "sent":
            already_sent.append(contract.row)
            continue
        envelope = existing.get(contract.key())
        if envelope is not None:
            on_server.append(contract.row)
            cost.sends += envelope.get("status") == "DRAFT"
            continue
        if state.get("envelope_id"):
            half_done.append(contract.row)
            cost.lookups += 1
            cost.sends += 1
            to_send.append(contract)
            continue
        if not (state.get("document_id") and uploads.owns(state)):
            found = inspected.get(str(contract.pdf))
            if not isinstance(found, InspectedPdf):
                error = found.server_message if found else f"document {contract.pdf} was not checked"
                problems.append(problem(contract.row, error, "pdf"))
                continue
            pdfs.add(found.sha256)
            if not uploads.uploaded(found.sha256) and found.sha256 not in planned:
                planned.add(found.sha256)
                cost.uploads += 1
        cost.creates += 1
        cost.sends += 1
        to_send.append(contract)
    emails = [r["email"].lower() for c in to_send for r in c.body["recipients"]]
    return {
        "contracts": len(contracts),
        "to_send": len(to_send),
        "distinct_pdfs": len(pdfs),
        "recipients": len(emails),
        "distinct_recipients": len(set(emails)),
        "already_sent": already_sent,
        "found_on_server": on_server,
        "half_done": half_done,
        "problems": [asdict(p) for p in problems],
        "requests": {**asdict(cost), "total": cost.total},
        "time": estimate(cost.total, settings),
        "journal": str(journal.path),
    }


def summary_text(summary: dict[str, Any], source: str) -> str:
    """The summary as Markdown lines: what the log shows and what the approver reads."""
    requests = summary["requests"]
    earlier = len(summary["already_sent"]) + len(summary["found_on_server"])
    lines = [
        f"**Bulk send preview of {source}** (nothing was sent)",
        "",
        f"- contracts: {summary['contracts']} — {summary['to_send']} to send, {earlier} already sent by an "
        f"earlier run, {len(summary['problems'])} with problems",
        f"- distinct PDFs to upload or reuse: {summary['distinct_pdfs']}",
        f"- recipients: {summary['recipients']} ({summary['distinct_recipients']} distinct e-mail addresses)",
        f"- requests the send will cost: {requests['total']} ({requests['uploads']} uploads, "
        f"{requests['creates']} creates, {requests['sends']} sends, {requests['lookups']} look-ups), "
        "then the wait's polls",
        f"- time: {summary['time']['text']}",
    ]
    if summary["already_sent"]:
        lines.append(f"- already sent (journal {summary['journal']}): {_names(summary['already_sent'])}")
    if summary["found_on_server"]:
        lines.append(f"- made by an earlier try, found on the server: {_names(summary['found_on_server'])}")
    if summary["half_done"]:
        lines.append(f"- created by an earlier try, still to send: {_names(summary['half_done'])}")
    if summary["problems"]:
        count = len(summary["problems"])
        lines += ["", f"**Rows with problems ({count})** — the send is refused until they are fixed:"]
        lines += [
            f"- row {p['row']}, {p['field']}: {p['error']} — fix: {p['fix']}"
            for p in summary["problems"][:SHOWN_PROBLEMS]
        ]
        if len(summary["problems"]) > SHOWN_PROBLEMS:
            lines.append(f"- … and {len(summary['problems']) - SHOWN_PROBLEMS} more (the preview's XCom)")
    if summary.get("fingerprint"):
        lines += ["", f"Fingerprint of what was previewed: sha256 {summary['fingerprint']}"]
    return "\n".join(lines)


def _names(rows: list[str], shown: int = 20) -> str:
    more = f" … and {len(rows) - shown} more" if len(rows) > shown else ""
    return ", ".join(rows[:shown]) + more
