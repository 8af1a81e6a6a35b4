"""A Certyneo emulator in its own process for benchmarks, so that it does not share the client's GIL."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from airflow_provider_certyneo.emulator.handle import EmulatorControl, connection_json
from airflow_provider_certyneo.emulator.pdf import text_pdf
from airflow_provider_certyneo.emulator.server import emulator_process
from airflow_provider_certyneo.governor.stores import STATE_DIR_ENV

KEY = "sk_test_" + "benchmark" * 4


@contextmanager
def emulator(per_minute: float, burst: int, **extra: float) -> Iterator[tuple[str, EmulatorControl]]:
    """Yields (connection id, control); ``AIRFLOW_CONN_CERTYNEO_BENCH`` points at the emulator."""
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="certyneo-bench-"))
    # each scenario paces from a fresh shared bucket, as its emulator starts with a full one
    os.environ[STATE_DIR_ENV] = tempfile.mkdtemp(prefix="certyneo-bench-rate-")
    with emulator_process(KEY, per_minute, burst) as base_url:
        os.environ["AIRFLOW_CONN_CERTYNEO_BENCH"] = connection_json(
            base_url, KEY, rate_limit_per_minute=per_minute, rate_limit_burst=burst, **extra
        )
        control = EmulatorControl(base_url)
        warm_up(base_url, control)
        yield "certyneo_bench", control
        control.close()


def warm_up(base_url: str, control: EmulatorControl) -> None:
    """One upload, then a reset: the emulator's first upload pays its imports (about half a second), which
    Certyneo, always warm, never makes anyone pay; the reset forgets the request, its token and the counts."""
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        pdf = text_pdf("Warm-up", ["not measured"])
        upload = client.post("/api/v1/documents", files={"file": ("warm-up.pdf", pdf, "application/pdf")})
        upload.raise_for_status()
    control.reset()


def contract_rows(purpose: str, count: int, distinct_pdfs: bool = False) -> tuple[Path, list[dict[str, str]]]:
    """A fresh work folder and ``count`` bulk rows to distinct signers: one PDF for all, or one each."""
    work = Path(tempfile.mkdtemp(prefix=f"certyneo-{purpose}-"))
    pdfs = []
    for i in range(count if distinct_pdfs else 1):
        pdf = work / f"contract-{i}.pdf"
        pdf.write_bytes(text_pdf(f"Contract {i}", [f"{purpose} benchmark"]))
        pdfs.append(pdf)
    rows = [
        {
            "pdf": str(pdfs[i % len(pdfs)]),
            "subject": f"Contract {i}",
            "signer_email": f"client{i}@example.com",
            "signer_name": f"Client {i}",
        }
        for i in range(count)
    ]
    return work, rows


def print_pace(
    name: str, requests: int, elapsed: float, counters: dict[str, Any], per_minute: float, burst: int
) -> None:
    """The lines every bulk benchmark prints from the emulator's own counts: the token bucket's floor for
    ``requests``, the ratio of ``elapsed`` to it, the 429s, and how many envelopes were sent once."""
    floor = max(1, requests - burst) * 60 / per_minute
    sends = counters["sends"]
    print(f"{name}_floor_seconds: {floor:.2f}")
    print(f"{name}_elapsed_seconds: {elapsed:.2f}")
    print(f"{name}_ratio_to_floor: {elapsed / floor:.3f}")
    print(f"{name}_429s: {counters['rateLimited']}")
    print(f"{name}_envelopes_sent_once: {sum(1 for n in sends.values() if n == 1)}")
    print(f"{name}_envelopes_sent_more_than_once: {sum(1 for n in sends.values() if n > 1)}")
