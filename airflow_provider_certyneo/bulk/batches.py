"""Mapping a manifest over Airflow tasks: in batches (any size of manifest), or one task per contract (up to
Airflow's ``[core] max_map_length``, checked before anything is sent).

Airflow refuses to map over more than ``[core] max_map_length`` items (1,024 by default) with an opaque
``unmappable_return_value_length`` after the task's retries; these helpers say so at once, naming the
setting and the alternatives, so a DAG author learns it from the first failed try and no contract is
sent by half a run.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_certyneo.exceptions import CertyneoValidationError

# 2,000 contracts are 8 batches, as many as the certyneo_api pool's 8 slots: every batch sends from the
# first second to the last. With more batches than slots, the key idles while the next wave's tasks start
# each time a wave ends (benchmarks/scale.py at a scaled clock: 20 batches of 100, 1.139x the floor).
DEFAULT_BATCH_SIZE = 250
AIRFLOW_DEFAULT_MAX_MAP_LENGTH = 1024


class MapLengthError(CertyneoValidationError):
    """More items than Airflow will map over: a setting to change, or another path to take."""


def max_map_length() -> int:
    """This deployment's ``[core] max_map_length``."""
    from airflow.providers.common.compat.sdk import conf

    return conf.getint("core", "max_map_length", fallback=AIRFLOW_DEFAULT_MAX_MAP_LENGTH)


def check_map_length(count: int, what: str = "contracts", limit: int | None = None) -> None:
    """Refuse, before any request, to hand Airflow more items to map over than it accepts."""
    limit = max_map_length() if limit is None else limit
    if count <= limit:
        return
    raise MapLengthError(
        f"the manifest has {count} {what}, more than Airflow maps over ([core] max_map_length = {limit}): "
        f"send them in batches (certyneo_bulk_mapped: manifest_batches(), one CertyneoBulkSendOperator per "
        f"batch of up to {DEFAULT_BATCH_SIZE}), or with one CertyneoBulkSendOperator task, or raise the "
        f"limit (AIRFLOW__CORE__MAX_MAP_LENGTH={count} on the scheduler and the workers)"
    )


def batch_ranges(count: int, batch_size: int = DEFAULT_BATCH_SIZE) -> list[list[int]]:
    """``[start, stop)`` row ranges covering ``count`` rows, ``batch_size`` at a time, in manifest order."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise CertyneoValidationError(f"batch_size must be a whole number of at least 1, not {batch_size!r}")
    return [[start, min(start + batch_size, count)] for start in range(0, count, batch_size)]


def manifest_batches(manifest: Any, batch_size: int = DEFAULT_BATCH_SIZE) -> list[list[int]]:
    """The row ranges of a manifest, for ``CertyneoBulkSendOperator.partial(manifest=…)
    .expand(row_range=manifest_batches(…))``: each batch is a paced, resumable bulk send of its rows.

    Reads the manifest once (rows are counted as the bulk operator reads them, bad rows included: each
    batch reports its own), and checks that the number of batches is one Airflow will map over."""
    from airflow_provider_certyneo.bulk.manifest import read_manifest

    ranges = batch_ranges(len(read_manifest(manifest)), batch_size)
    check_map_length(len(ranges), f"batches of {batch_size}")
    return ranges


def parse_row_range(row_range: Any) -> tuple[int, int] | None:
    """The operator's ``row_range`` argument, checked: None (every row) or ``[start, stop)``."""
    if row_range is None:
        return None
    if (
        isinstance(row_range, (list, tuple))
        and len(row_range) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) for n in row_range)
        and 0 <= row_range[0] < row_range[1]
    ):
        return int(row_range[0]), int(row_range[1])
    raise CertyneoValidationError(
        f"row_range must be [start, stop) with 0 <= start < stop (rows of the manifest, counted from 0, "
        f"as manifest_batches() gives them), not {row_range!r}"
    )
