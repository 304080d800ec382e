"""The flat export a BI tool loads: one CSV per metric and period, with stable, documented column names."""

import csv
import io

from apps.core.errors import BusinessError
from apps.core.money import quantize

from . import selectors
from .definitions import DEFINITIONS
from .periods import Period

# Stable: a BI model is built on these names. Add columns at the end; never rename or reorder (docs/metrics.md).
CSV_COLUMNS = [
    "metric",
    "metric_name",
    "unit",
    "period",
    "period_start",
    "period_end",
    "legal_entity",
    "legal_entity_name",
    "currency",
    "value",
    "sample_size",
    "as_of",
    "computed_at",
    "definition",
]


def _figure(value, currency: str) -> str:
    """Money in its currency's minor units (12.50 USD, 1200 JPY), other figures to four places."""
    return f"{quantize(value, currency):f}" if currency else f"{value:.4f}"


def export_filename(metric: str, period: Period) -> str:
    return f"{metric}_{period.label}.csv"


def metric_csv(metric: str, period: Period) -> str:
    """The current figures of one metric for one period as CSV text (header only when there are none)."""
    if metric not in DEFINITIONS:
        raise BusinessError(
            f"There is no metric '{metric}'.",
            fix=f"Use one of: {', '.join(sorted(DEFINITIONS))}.",
            technical=f"metric={metric!r}",
        )
    snapshot = selectors.latest_snapshots().filter(metric=metric, period=period.start).first()
    definition = DEFINITIONS[metric]
    if snapshot is None:
        raise BusinessError(
            f"{definition.name} has not been computed for {period.label} yet.",
            fix=f"Compute it first: manage.py compute_metrics --period {period.label} (the hourly schedule computes "
            "the running and the previous month).",
            technical=f"no MetricSnapshot for metric={metric} period={period.start}",
        )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for value in snapshot.values.select_related("legal_entity").order_by("legal_entity__code", "currency"):
        entity = value.legal_entity
        writer.writerow(
            [
                metric,
                definition.name,
                definition.unit,
                period.label,
                period.start.isoformat(),
                period.end.isoformat(),
                entity.code if entity else "",
                entity.name if entity else "",
                value.currency,
                _figure(value.value, value.currency if definition.is_money else ""),
                value.sample_size,
                snapshot.as_of.isoformat(),
                snapshot.computed_at.isoformat(),
                definition.definition,
            ]
        )
    return buffer.getvalue()
