"""A first pass over the invoice snapshots, data-diff style: compare counts and checksums per key range on both
sides and descend only into the ranges that differ, so an unchanged month costs close to a count.

A key range is every invoice number with one prefix (a contiguous range of keys). The first level groups the
whole scope by the first two characters past the prefix every key shares; each level below groups the differing
ranges' rows by a prefix two characters longer, one GROUP BY per side and table. A range is a leaf once it
holds at most `LEAF_ROWS` invoices on each side; the detailed checks then run only on the leaves (a filter on
the key's prefix). When most rows differ anyway the pass gives up and the checks run on everything, so a month
full of differences costs one extra grouped aggregate, not a descent.

The checksum is portable (integer arithmetic on SQLite and PostgreSQL): amounts in minor units, summed plain and
weighted (invoices by the code of the key's last character, lines by their line number), plus a checksum of the
keys themselves, per side. It is kept to a few sums so that an unchanged month costs little more than a count.
Like any checksum it can in theory collide; two differences that cancel out exactly in every sum would hide.
"""

import dataclasses
from functools import reduce
from operator import or_

from django.conf import settings
from django.db.models import BigIntegerField, Count, F, Q, Sum
from django.db.models.functions import Cast, Coalesce, Length, Ord, Right, Round, Substr
from django.db.models.lookups import In

from .models import SnapshotInvoice, SnapshotInvoiceLine
from .pulls import BILLING, ERP

LEAF_ROWS = 256
STEP = 2
GIVE_UP_FRACTION = 0.5
MAX_LEVELS = 12


@dataclasses.dataclass
class RangePass:
    """What the first pass found: the prefixes of the differing ranges (None: compare everything)."""

    prefixes: list[str] | None
    queries: int = 0
    levels: int = 0
    rows: int = 0

    def key_filter(self, field: str = "invoice_key") -> Q | None:
        """A filter keeping only the keys in differing ranges; None when everything is to be compared."""
        if self.prefixes is None:
            return None
        if not self.prefixes:
            return Q(pk__in=[])
        by_length: dict[int, list[str]] = {}
        for prefix in self.prefixes:
            by_length.setdefault(len(prefix), []).append(prefix)
        return reduce(or_, (Q(In(Substr(field, 1, length), sorted(keys))) for length, keys in by_length.items()))


def enabled() -> bool:
    return bool(getattr(settings, "RECONCILIATION_RANGE_PASS", True))


def _cents(field: str):
    return Cast(Round(F(field) * 100), BigIntegerField())


def _signature(rows, amounts: list[str], key: str = "invoice_key", weight: str | None = None) -> dict:
    last = Ord(Right(key, 1))
    sums = {"n": Count("pk"), "keys": Coalesce(Sum(Length(key) * 131 + last), 0)}
    for name in amounts:
        sums[f"{name}_sum"] = Coalesce(Sum(_cents(name)), 0)
        sums[f"{name}_w"] = Coalesce(Sum(_cents(name) * (F(weight) if weight else last)), 0)
    return sums


INVOICE_AMOUNTS = ["subtotal", "tax_total"]  # what the invoice checks compare (the total is their sum)
LINE_AMOUNTS = ["amount"]  # the line check compares amounts; tax is compared per invoice


def _sources(scope):
    """Per side: the in-scope invoices, and every line of the run (a line difference anywhere makes a range differ)."""
    sides = {}
    for side in (BILLING, ERP):
        invoices = SnapshotInvoice.objects.filter(run_id=scope.run_id, system=side, period=scope.period).order_by()
        if scope.entity:
            invoices = invoices.filter(legal_entity_code=scope.entity)
        lines = SnapshotInvoiceLine.objects.filter(run_id=scope.run_id, system=side).order_by()
        sides[side] = ((invoices, INVOICE_AMOUNTS, None), (lines, LINE_AMOUNTS, "line_number"))
    return sides


def _grouped(rows, amounts, weight, length: int, parents: Q | None) -> dict[str, dict]:
    if parents is not None:
        rows = rows.filter(parents)
    signature = _signature(rows, amounts, weight=weight)
    grouped = rows.annotate(_range=Substr("invoice_key", 1, length)).values("_range").annotate(**signature)
    return {row.pop("_range"): row for row in grouped}


def _common_prefix(scope) -> str:
    keys = []
    for side in (BILLING, ERP):
        rows = SnapshotInvoice.objects.filter(run_id=scope.run_id, system=side).order_by("invoice_key")
        first = rows.values_list("invoice_key", flat=True).first()
        last = rows.reverse().values_list("invoice_key", flat=True).first()
        keys += [key for key in (first, last) if key is not None]
    if not keys:
        return ""
    low, high = min(keys), max(keys)
    size = 0
    while size < min(len(low), len(high)) and low[size] == high[size]:
        size += 1
    return low[:size]


def _differing(found: dict[str, list]) -> list[tuple[str, int]]:
    """The ranges whose invoice or line signatures differ between the sides, with their invoice counts."""
    return [
        (prefix, max(b_inv.get("n", 0), e_inv.get("n", 0)))
        for prefix, (b_inv, b_lines, e_inv, e_lines) in found.items()
        if b_inv != e_inv or b_lines != e_lines
    ]


def _spread(differing: list[tuple[str, int]], result: RangePass) -> bool:
    """Whether the differing ranges hold most of the rows (comparing everything then costs less than descending)."""
    return sum(size for _, size in differing) > GIVE_UP_FRACTION * max(result.rows, 1)


def differing_ranges(scope) -> RangePass:
    """Descend from the whole scope into the key ranges whose counts or checksums differ between billing and ERP."""
    result = RangePass(prefixes=[])
    sources = _sources(scope)
    parents: list[str] | None = None
    # The first level groups by the first characters that vary (a key prefix past the one all keys share), so an
    # unchanged month costs one grouped aggregate per side and table.
    length = len(_common_prefix(scope)) + STEP
    leaves: list[str] = []
    while True:
        parent_filter = RangePass(parents).key_filter() if parents is not None else None
        found: dict[str, list] = {}
        # Invoices first (five times fewer rows than lines): when they alone show differences spread over most
        # ranges, the pass gives up before reading a line, so a month full of differences costs one grouped
        # aggregate of the invoices, not of the lines too.
        for index in (0, 1):
            for side, tables in sources.items():
                rows, amounts, weight = tables[index]
                for prefix, signature in _grouped(rows, amounts, weight, length, parent_filter).items():
                    found.setdefault(prefix, [{}, {}, {}, {}])[(0 if side == BILLING else 2) + index] = signature
                result.queries += 1
            if index == 0:
                if parents is None:
                    result.rows = sum(max(b.get("n", 0), e.get("n", 0)) for b, _, e, _ in found.values())
                if _spread(_differing(found), result):
                    return dataclasses.replace(result, levels=result.levels + 1, prefixes=None)
        result.levels += 1
        differing = _differing(found)
        if not differing:
            break
        if _spread(differing, result):
            return dataclasses.replace(result, prefixes=None)  # most rows differ: descending would cost more
        deeper = []
        for prefix, size in differing:
            (leaves if size <= LEAF_ROWS or result.levels >= MAX_LEVELS else deeper).append(prefix)
        if not deeper:
            break
        parents, length = deeper, length + STEP
    result.prefixes = sorted(set(leaves))
    return result
