"""``certyneo-evidence verify`` on an archive: every bundle verifies; after tampering, the command exits
non-zero and names each bundle that no longer verifies."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_certyneo.cli.evidence import main
from airflow_provider_certyneo.emulator.pytest_plugin import CertyneoEmulator
from tests.evidence.conftest import Signed, append_page, run_operator


@pytest.fixture
def archive(
    certyneo_emulator: CertyneoEmulator, make_signed: Callable[..., Signed], archive_dir: Path, tmp_path: Path
) -> tuple[Path, list[str], Path]:
    ids = [make_signed().envelope_id for _ in range(3)]
    run_operator(envelope_ids=ids, destination=str(archive_dir))
    root = tmp_path / "certyneo-root.pem"
    root.write_text(certyneo_emulator.trust_root)
    return archive_dir, ids, root


def test_a_good_archive_verifies(
    archive: tuple[Path, list[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, ids, root = archive
    assert main(["verify", str(folder), "--trust-roots", str(root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert all(line.startswith("OK   ") for line in lines)
    assert sorted(ids) == sorted(line.split()[1].rstrip(":").rsplit("/", 1)[-1] for line in lines)
    # one bundle named directly
    assert main(["verify", str(folder / ids[0]), "--trust-roots", str(root)]) == 0


@pytest.mark.slow
def test_a_tampered_archive_fails_naming_each_bundle(archive: tuple[Path, list[str], Path]) -> None:
    folder, ids, root = archive
    first = folder / ids[0] / f"{ids[0]}-signed-document.pdf"
    first.write_bytes(append_page(first.read_bytes()))
    trail = folder / ids[1] / f"{ids[1]}-audit-trail.pdf"
    data = trail.read_bytes()
    at = data.index(b"eIDAS audit trail")
    trail.write_bytes(data[:at] + b"E" + data[at + 1 :])
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_certyneo.cli.evidence", "verify", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "CERTYNEO_EVIDENCE_TRUST_ROOTS": str(root)},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = {line.split()[1].rstrip(":").rsplit("/", 1)[-1]: line for line in result.stdout.splitlines()}
    assert lines[ids[0]].startswith("FAIL")
    assert "signed_document.covers_whole_file: " in lines[ids[0]]
    assert "bundle.signed_document: " in lines[ids[0]]
    assert lines[ids[1]].startswith("FAIL")
    assert "audit_trail.intact: " in lines[ids[1]]
    assert lines[ids[2]].startswith("OK")
    named = sorted(str(folder / envelope_id) for envelope_id in ids[:2])
    assert f"2 of 3 bundle(s) do not verify: {', '.join(named)}" in result.stderr


def test_another_root_or_none_is_refused(
    archive: tuple[Path, list[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow_provider_certyneo.emulator.seal import new_pki

    folder, _, _ = archive
    other = tmp_path / "other.pem"
    other.write_text(new_pki("Someone else").root_pem)
    assert main(["verify", str(folder), "--trust-roots", str(other)]) == 1
    assert "signed_document.trusted: " in capsys.readouterr().out
    assert main(["verify", str(folder)]) == 2
    assert "no trust roots: pass --trust-roots" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "nowhere"), "--trust-roots", str(other)]) == 1
    assert "no evidence bundle" in capsys.readouterr().out
