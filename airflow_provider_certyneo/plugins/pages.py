"""The Signatures view's pages, served by the plugin's app on the API server and shown by Airflow's UI in a
tab of each DAG run and under Browse (``external_views``):

* ``GET /certyneo/signatures/runs/{dag_id}/{run_id}`` — every envelope the run's Certyneo tasks made, each
  recipient's status and time, decline reasons, links to the task instance and to the envelope;
* ``GET /certyneo/signatures/waiting`` — the envelopes still waiting in the whole deployment, oldest first,
  with who is holding each up.

Both use Airflow's own authentication (the UI's session cookie or a bearer token) and authorisation: the run
page needs read access to the DAG's runs, the deployment page lists only DAGs the user may read. Everything
shown is escaped, and holds no key and no sign URL. Server-rendered: no JavaScript bundle to build.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_provider_certyneo.client.outcomes import at, holding_up, progress, who

if TYPE_CHECKING:
    from fastapi import APIRouter

    from airflow_provider_certyneo.plugins.signatures import Row

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:16px;color:#1a202c;
font-size:14px}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:20px 0 4px} .muted{color:#5a6578}
table{border-collapse:collapse;margin:6px 0 12px;width:100%} th,td{border:1px solid #d5dbe3;padding:4px 8px;
text-align:left;vertical-align:top} th{background:#f2f5f9} .SIGNED,.COMPLETED{color:#1f7a3a;font-weight:600}
.PENDING,.SENT{color:#9a6700;font-weight:600} .DECLINED,.VOIDED,.EXPIRED{color:#b42318;font-weight:600}
.empty{padding:12px;background:#f7f9fb;border:1px dashed #c4ccd6} a{color:#1d5fb8}
"""


def e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    )


def ti_url(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    """The task instance's page in Airflow 3's UI (opened in the whole window, not the view's frame)."""
    url = f"/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}/tasks/{quote(task_id, safe='')}"
    return url + (f"/mapped/{map_index}" if map_index >= 0 else "")


def link(url: str | None, text: str) -> str:
    if not url:
        return e(text)
    return f'<a href="{e(url)}" target="_top" rel="noopener">{e(text)}</a>'


def recipients_table(row: Row) -> str:
    envelope = row.envelope or {}
    day = envelope.get("updatedAt")
    up_now = {r.get("email") for r in holding_up(envelope)[0]} if envelope.get("status") == "SENT" else set()
    lines = []
    for r in sorted(row.recipients, key=lambda r: r.get("order") or 0):
        status = str(r.get("status") or "?")
        if status == "SIGNED":
            when = f"signed at {at(r.get('signedAt'), day)}"
        elif status == "DECLINED":
            when = f"declined at {at(day, day)}"
        elif r.get("role") not in (None, "SIGNER"):
            when = "copy only"
        elif r.get("email") in up_now:
            when = "holding it up: their turn" if envelope.get("signingOrder") == "SEQUENTIAL" else "to sign"
        else:
            when = "waits for an earlier signer" if envelope.get("status") == "SENT" else "did not sign"
        lines.append(
            f"<tr><td>{e(r.get('order'))}</td><td>{e(r.get('name'))}</td><td>{e(r.get('email'))}</td>"
            f"<td>{e(r.get('role'))}</td><td class='{e(status)}'>{e(status)}</td><td>{e(when)}</td>"
            f"<td>{e(r.get('declineReason') or '')}</td></tr>"
        )
    return (
        "<table><tr><th>order</th><th>name</th><th>e-mail</th><th>role</th><th>status</th><th>when</th>"
        "<th>decline reason</th></tr>" + "".join(lines) + "</table>"
    )


def envelope_block(row: Row) -> str:
    m = row.made
    task = m.task_id + (f" [{m.map_index}]" if m.map_index >= 0 else "")
    where = (
        f"task {link(ti_url(m.dag_id, m.run_id, m.task_id, m.map_index), task)} · envelope "
        f"{link(m.url, m.envelope_id)} · connection {e(m.conn_id)}"
    )
    if row.envelope is None:
        return f"<h2>{e(m.envelope_id)}</h2><p class='muted'>{where}</p><p>{e(row.problem)}</p>"
    envelope = row.envelope
    status = str(envelope.get("status") or "?")
    return (
        f"<h2>{e(envelope.get('subject'))} <span class='{e(status)}'>{e(status)}</span></h2>"
        f"<p class='muted'>{where} · {e(envelope.get('signingOrder', '').lower())} signing</p>"
        f"<p>{e(progress(envelope))}</p>" + recipients_table(row)
    )


def run_page(dag_id: str, run_id: str, rows: list[Row]) -> str:
    title = f"Signatures — {dag_id} / {run_id}"
    head = f"<h1>Signatures</h1><p class='muted'>DAG {e(dag_id)} · run {e(run_id)} · times UTC</p>"
    if not rows:
        body = (
            "<p class='empty'>No Certyneo data for this run: none of its tasks has made or sent a Certyneo "
            "envelope (yet).</p>"
        )
        return page(title, head + body)
    waiting = sum(1 for r in rows if (r.envelope or {}).get("status") == "SENT")
    summary = f"<p>{len(rows)} envelope{'s' if len(rows) != 1 else ''}, {waiting} still waiting.</p>"
    return page(title, head + summary + "".join(envelope_block(r) for r in rows))


def waiting_page(rows: list[Row], problems: list[str], readable: int) -> str:
    title = "Signatures — still waiting"
    head = (
        "<h1>Envelopes still waiting</h1><p class='muted'>Sent by runs of the DAGs you may read "
        f"({readable}), oldest first · times UTC</p>"
    )
    notes = "".join(f"<p class='DECLINED'>{e(p)}</p>" for p in problems)
    if not rows:
        return page(
            title, head + notes + "<p class='empty'>No Certyneo envelope is waiting for a signature.</p>"
        )
    lines = []
    for row in rows:
        m, envelope = row.made, row.envelope or {}
        holding, since = holding_up(envelope)
        signers = [r for r in row.recipients if r.get("role", "SIGNER") == "SIGNER"]
        signed = sum(1 for r in signers if r.get("status") == "SIGNED")
        task = m.task_id + (f" [{m.map_index}]" if m.map_index >= 0 else "")
        holders = ", ".join(who(r) for r in holding)
        lines.append(
            f"<tr><td>{e(str(envelope.get('sentAt') or '')[:10])} {e(at(envelope.get('sentAt'), None))}</td>"
            f"<td>{link(m.url, str(envelope.get('subject') or m.envelope_id))}</td>"
            f"<td>{e(holders)}</td>"
            f"<td>{e(at(since, None))}</td><td>{signed} of {len(signers)}</td>"
            f"<td>{e(m.dag_id)} / {link(ti_url(m.dag_id, m.run_id, m.task_id, m.map_index), task)}</td></tr>"
        )
    table = (
        "<table><tr><th>sent</th><th>envelope</th><th>holding it up</th><th>since</th><th>signed</th>"
        "<th>DAG / task</th></tr>" + "".join(lines) + "</table>"
    )
    return page(title, head + notes + f"<p>{len(rows)} waiting.</p>" + table)


def router() -> APIRouter:
    """The view's routes, with Airflow's authentication and authorisation."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import get_user, requires_access_dag
    from fastapi import APIRouter, Depends
    from fastapi.responses import HTMLResponse

    from airflow_provider_certyneo.plugins import signatures

    routes = APIRouter()

    @routes.get(
        "/signatures/runs/{dag_id}/{run_id:path}",
        response_class=HTMLResponse,
        dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.RUN))],
    )
    def run_signatures(dag_id: str, run_id: str) -> HTMLResponse:
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            made = signatures.run_envelopes(session, dag_id, run_id)
            started = session.scalar(
                select(DagRun.run_after).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
            )
        since = started - signatures.CLOCK_MARGIN if started is not None else None
        rows = signatures.rows_for(made, since)
        return HTMLResponse(run_page(dag_id, run_id, rows), headers=NO_STORE)

    @routes.get("/signatures/waiting", response_class=HTMLResponse)
    def waiting_signatures(user: Any = Depends(get_user)) -> HTMLResponse:  # noqa: B008 - FastAPI's idiom
        # (a default, not an Annotated type: this module's annotations are strings FastAPI cannot resolve
        # from names imported inside this function)
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.utils.session import create_session

        dag_ids = get_auth_manager().get_authorized_dag_ids(user=user, method="GET")
        with create_session() as session:
            made = signatures.recent_envelopes(session, dag_ids)
        rows, problems = signatures.waiting_rows(made)
        return HTMLResponse(waiting_page(rows, problems, len(dag_ids)), headers=NO_STORE)

    return routes


NO_STORE = {"Cache-Control": "no-store"}
