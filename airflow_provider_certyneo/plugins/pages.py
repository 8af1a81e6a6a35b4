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
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_provider_certyneo.client.outcomes import at, holding_up, progress, who
from airflow_provider_certyneo.client.timestamps import instant

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


PAGE_SIZE = 100  # envelopes per page of the run page and the waiting page
ATTENTION_PENDING = 20  # the longest-waiting envelopes named under "Needs attention"
ATTENTION_MAX = 100  # rows of "Needs attention" at most (the rest are in the pages below)
STATUS_ORDER = ("SENT", "COMPLETED", "DECLINED", "EXPIRED", "VOIDED", "DRAFT")
STOPPED = ("DECLINED", "EXPIRED", "VOIDED")


def counts(rows: list[Row]) -> list[tuple[str, int]]:
    """Envelopes per status, in a fixed order (the states Certyneo could not tell last, as "unknown")."""
    seen: dict[str, int] = {}
    for r in rows:
        status = str(r.envelope.get("status") or "?") if r.envelope is not None else "unknown"
        seen[status] = seen.get(status, 0) + 1
    order = [s for s in STATUS_ORDER if s in seen] + sorted(set(seen) - {*STATUS_ORDER, "unknown"})
    return [(s, seen[s]) for s in order] + ([("unknown", seen["unknown"])] if "unknown" in seen else [])


def attention_line(row: Row) -> dict[str, Any]:
    """Who holds an envelope up: the decliner and why, the signers an expired or voided envelope waited
    for, or the signers whose turn it is and since when."""
    m, envelope = row.made, row.envelope or {}
    status = str(envelope.get("status") or "?") if row.envelope is not None else "unknown"
    signers = [r for r in row.recipients if r.get("role", "SIGNER") == "SIGNER"]
    since: Any = envelope.get("updatedAt")
    if row.envelope is None:
        holders, detail = "", row.problem or ""
    elif status == "DECLINED":
        decliners = [r for r in signers if r.get("status") == "DECLINED"]
        holders = ", ".join(who(r) for r in decliners)
        detail = "; ".join(r.get("declineReason") or "no reason given" for r in decliners)
    elif status == "SENT":
        holding, since = holding_up(envelope)
        holders, detail = ", ".join(who(r) for r in holding), ""
    else:
        holders = ", ".join(who(r) for r in signers if r.get("status", "PENDING") == "PENDING")
        detail = "did not sign"
    return {
        "status": status,
        "url": m.url,
        "subject": str(envelope.get("subject") or m.envelope_id),
        "holders": holders,
        "since": f"{str(since or '')[:10]} {at(since, None)}" if since else "",
        "detail": detail,
        "signed": sum(1 for r in signers if r.get("status") == "SIGNED"),
        "signers": len(signers),
        "task": task_label(m),
        "task_url": ti_url(m.dag_id, m.run_id, m.task_id, m.map_index),
    }


def needs_attention(rows: list[Row]) -> tuple[list[Row], int]:
    """The rows that hold a run up, worst first: declined, expired, voided, unknown, then the
    :data:`ATTENTION_PENDING` envelopes waiting longest for the same signer; at most :data:`ATTENTION_MAX`
    (and how many more there are)."""
    unsent = datetime.max.replace(tzinfo=timezone.utc)

    def rank(r: Row) -> tuple[int, datetime]:
        status = (r.envelope or {}).get("status") if r.envelope is not None else "unknown"
        order = [*STOPPED, "unknown"]
        return (order.index(status) if status in order else len(order), unsent)

    stopped = sorted((r for r in rows if rank(r)[0] < len(STOPPED) + 1), key=rank)
    pending = [r for r in rows if r.envelope is not None and r.envelope.get("status") == "SENT"]
    pending.sort(key=lambda r: instant(holding_up(r.envelope or {})[1]) or unsent)
    chosen = stopped + pending[:ATTENTION_PENDING]
    return chosen[:ATTENTION_MAX], max(0, len(chosen) - ATTENTION_MAX)


def paging(total: int, page: int) -> dict[str, Any]:
    """Which slice of ``total`` rows page ``page`` (1-based, clamped) shows, and the pages to link to."""
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    return {
        "page": page,
        "pages": pages,
        "first": (page - 1) * PAGE_SIZE,
        "last": min(total, page * PAGE_SIZE),
        "total": total,
        "links": list(range(1, pages + 1)) if pages > 1 else [],
    }


def run_page(dag_id: str, run_id: str, rows: list[Row], page: int = 1, note: str | None = None) -> str:
    """The run's page: how many envelopes per status, those that need attention, then every envelope with
    its recipients, :data:`PAGE_SIZE` a page (``?page=N``)."""
    waiting = sum(1 for r in rows if (r.envelope or {}).get("status") == "SENT")
    attention, more = needs_attention(rows)
    pager = paging(len(rows), page)
    return render(
        "run.html",
        title=f"Signatures — {dag_id} / {run_id}",
        dag_id=dag_id,
        run_id=run_id,
        total=len(rows),
        waiting=waiting,
        note=note,
        counts=counts(rows),
        attention=[attention_line(r) for r in attention],
        more_attention=more,
        pager=pager,
        blocks=[envelope_block(r) for r in rows[pager["first"] : pager["last"]]],
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


def waiting_page(
    rows: list[Row], problems: list[str], readable: int, page: int = 1, note: str | None = None
) -> str:
    """The deployment's waiting envelopes, oldest first, :data:`PAGE_SIZE` a page (``?page=N``)."""
    pager = paging(len(rows), page)
    return render(
        "waiting.html",
        title="Signatures — still waiting",
        readable=readable,
        problems=[*problems, *([note] if note else [])],
        total=len(rows),
        pager=pager,
        rows=[waiting_line(r) for r in rows[pager["first"] : pager["last"]]],
    )


def run_html(dag_id: str, run_id: str, page: int = 1) -> str:
    """The run page, read from the metadata database (the run's XComs) and Certyneo (one bounded look)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from airflow_provider_certyneo.plugins import signatures

    with create_session() as session:
        made = signatures.run_envelopes(session, dag_id, run_id)
        started = session.scalar(
            select(DagRun.run_after).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
        )
    since = started - signatures.CLOCK_MARGIN if started is not None else None
    rows = signatures.rows_for(made, since, scope=(dag_id, run_id))
    return run_page(dag_id, run_id, rows, page, signatures.run_note((dag_id, run_id)))


def waiting_html(dag_ids: set[str], page: int = 1) -> str:
    """The waiting page for a user who may read ``dag_ids``."""
    from airflow.utils.session import create_session

    from airflow_provider_certyneo.plugins import signatures

    with create_session() as session:
        made = signatures.recent_envelopes(session, dag_ids)
    rows, problems = signatures.waiting_rows(made)
    return waiting_page(rows, problems, len(dag_ids), page)


def router() -> APIRouter:
    """The view's routes, with Airflow's authentication and authorisation."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import get_user, requires_access_dag
    from fastapi import APIRouter, Depends
    from fastapi.responses import HTMLResponse

    routes = APIRouter()

    @routes.get(
        "/signatures/runs/{dag_id}/{run_id:path}",
        response_class=HTMLResponse,
        dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.RUN))],
    )
    def run_signatures(dag_id: str, run_id: str, page: int = 1) -> HTMLResponse:
        return HTMLResponse(run_html(dag_id, run_id, page), headers=NO_STORE)

    @routes.get("/signatures/waiting", response_class=HTMLResponse)
    def waiting_signatures(page: int = 1, user: Any = Depends(get_user)) -> HTMLResponse:  # noqa: B008 - FastAPI's idiom
        # (a default, not an Annotated type: this module's annotations are strings FastAPI cannot resolve
        # from names imported inside this function)
        from airflow.api_fastapi.app import get_auth_manager

        dag_ids = get_auth_manager().get_authorized_dag_ids(user=user, method="GET")
        return HTMLResponse(waiting_html(dag_ids, page), headers=NO_STORE)

    return routes


NO_STORE = {"Cache-Control": "no-store"}
