"""The Signatures view's pages, served by the plugin's app on the API server and shown by Airflow's UI in a
tab of each DAG run and under Browse (``external_views``):

* ``GET /certyneo/signatures/runs/{dag_id}/{run_id}`` — every envelope the run's Certyneo tasks made, each
  recipient's status and time, decline reasons, links to the task instance and to the envelope;
* ``GET /certyneo/signatures/waiting`` — the envelopes still waiting in the whole deployment, oldest first,
  with who is holding each up.

Both use Airflow's own authentication (the UI's session cookie or a bearer token) and authorisation: the run
page needs read access to the DAG's runs, the deployment page lists only DAGs the user may read. Everything
shown is escaped, and holds no key and no sign URL. Server-rendered from Jinja2 templates (package data,
``templates/signatures/``, autoescaped; Jinja2 comes with every Airflow install): no JavaScript bundle to
build.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_provider_certyneo.client.outcomes import at, holding_up, progress, who

if TYPE_CHECKING:
    import jinja2
    from fastapi import APIRouter

    from airflow_provider_certyneo.plugins.signatures import Made, Row

TEMPLATES = "templates"  # package data of this package: signatures/{base,macros,run,waiting}.html


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The pages' Jinja2 environment, made once per process: templates shipped in the package, every value
    escaped (autoescape) unless a template says otherwise (none does)."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("airflow_provider_certyneo.plugins", TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        auto_reload=False,
    )


def render(template: str, **context: Any) -> str:
    return environment().get_template(f"signatures/{template}").render(**context)


def ti_url(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    """The task instance's page in Airflow 3's UI (opened in the whole window, not the view's frame)."""
    url = f"/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}/tasks/{quote(task_id, safe='')}"
    return url + (f"/mapped/{map_index}" if map_index >= 0 else "")


def task_label(made: Made) -> str:
    return made.task_id + (f" [{made.map_index}]" if made.map_index >= 0 else "")


def recipient_lines(row: Row) -> list[dict[str, Any]]:
    """The recipients of a row, in signing order, each with what they did or are expected to do."""
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
            {
                "order": "" if r.get("order") is None else r.get("order"),
                "name": r.get("name") or "",
                "email": r.get("email") or "",
                "role": r.get("role") or "",
                "status": status,
                "when": when,
                "reason": r.get("declineReason") or "",
            }
        )
    return lines


def envelope_block(row: Row) -> dict[str, Any]:
    """What the run page shows of one envelope (plain values: the template escapes them)."""
    m = row.made
    block: dict[str, Any] = {
        "envelope_id": m.envelope_id,
        "url": m.url,
        "task": task_label(m),
        "task_url": ti_url(m.dag_id, m.run_id, m.task_id, m.map_index),
        "conn_id": m.conn_id,
        "problem": row.problem if row.envelope is None else None,
    }
    if row.envelope is not None:
        envelope = row.envelope
        block.update(
            subject=envelope.get("subject") or "",
            status=str(envelope.get("status") or "?"),
            signing_order=str(envelope.get("signingOrder") or "").lower(),
            progress=progress(envelope),
            recipients=recipient_lines(row),
        )
    return block


def run_page(dag_id: str, run_id: str, rows: list[Row]) -> str:
    waiting = sum(1 for r in rows if (r.envelope or {}).get("status") == "SENT")
    return render(
        "run.html",
        title=f"Signatures — {dag_id} / {run_id}",
        dag_id=dag_id,
        run_id=run_id,
        total=len(rows),
        waiting=waiting,
        blocks=[envelope_block(r) for r in rows],
    )


def waiting_line(row: Row) -> dict[str, Any]:
    m, envelope = row.made, row.envelope or {}
    holding, since = holding_up(envelope)
    signers = [r for r in row.recipients if r.get("role", "SIGNER") == "SIGNER"]
    return {
        "sent": f"{str(envelope.get('sentAt') or '')[:10]} {at(envelope.get('sentAt'), None)}",
        "url": m.url,
        "subject": str(envelope.get("subject") or m.envelope_id),
        "holders": ", ".join(who(r) for r in holding),
        "since": at(since, None),
        "signed": sum(1 for r in signers if r.get("status") == "SIGNED"),
        "signers": len(signers),
        "dag_id": m.dag_id,
        "task": task_label(m),
        "task_url": ti_url(m.dag_id, m.run_id, m.task_id, m.map_index),
    }


def waiting_page(rows: list[Row], problems: list[str], readable: int) -> str:
    return render(
        "waiting.html",
        title="Signatures — still waiting",
        readable=readable,
        problems=problems,
        rows=[waiting_line(r) for r in rows],
    )


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
