"""Matching as finance expects it: per-currency tolerances in SQL, and the value at risk in the reporting currency."""

import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Case, DecimalField, Q, Value, When

from apps.canonical.models import ExchangeRate
from apps.core.money import MINOR_UNITS, quantize

# SQLite keeps decimals as binary floats: a difference exactly at the tolerance must still count as within it.
FLOAT_GUARD = Decimal("0.000001")
MONEY = DecimalField(max_digits=18, decimal_places=2)


def tolerance(currency: str, level: str) -> Decimal:
    """The largest difference that still counts as equal for a line or a document in this currency."""
    table = getattr(settings, "RECONCILIATION_TOLERANCES", {})
    entry = table.get(currency) or table.get("*") or {}
    minor = Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2))
    value = Decimal(str(entry.get(level, minor)))
    return max(value, Decimal(0))


def tolerance_expression(level: str, currency_field: str = "currency"):
    """A SQL CASE giving each row's tolerance from its currency (so the database filters, not Python)."""
    table = getattr(settings, "RECONCILIATION_TOLERANCES", {})
    whens = [
        When(**{currency_field: code}, then=Value(tolerance(code, level) + FLOAT_GUARD))
        for code in sorted(table)
        if code != "*"
    ]
    default = Value(tolerance("*", level) + FLOAT_GUARD)
    return Case(*whens, default=default, output_field=MONEY) if whens else default


def tolerance_sql(level: str, column: str) -> tuple[str, list]:
    """The same CASE as `tolerance_expression`, as SQL text and parameters for the joins written by hand."""
    table = getattr(settings, "RECONCILIATION_TOLERANCES", {})
    codes = [code for code in sorted(table) if code != "*"]
    whens = "".join(f" WHEN {column} = %s THEN %s" for _ in codes)
    params: list = []
    for code in codes:
        params += [code, float(tolerance(code, level) + FLOAT_GUARD)]
    default = float(tolerance("*", level) + FLOAT_GUARD)
    if not codes:
        return "(%s)", [default]
    return f"(CASE{whens} ELSE %s END)", [*params, default]


def beyond_tolerance(difference: str, level: str, currency_field: str = "currency") -> Q:
    """Rows whose annotated `difference` is outside the tolerance either way."""
    tol = tolerance_expression(level, currency_field)
    return Q(**{f"{difference}__gt": tol}) | Q(**{f"{difference}__lt": -tol})


class ReportingCurrency:
    """Converts amounts to the firm's reporting currency with the ERP's stored rates (latest on or before a date)."""

    def __init__(self, code: str | None = None):
        self.code = code or getattr(settings, "REPORTING_CURRENCY", "USD")
        self._rates: dict[tuple[str, datetime.date], Decimal | None] = {}

    def rate(self, currency: str, on: datetime.date) -> Decimal | None:
        """Units of the reporting currency for one unit of `currency`; None when no rate is stored."""
        if currency == self.code:
            return Decimal(1)
        key = (currency, on)
        if key not in self._rates:
            direct = (
                ExchangeRate.objects.filter(base=currency, quote=self.code, effective_date__lte=on)
                .order_by("-effective_date")
                .values_list("rate", "effective_date")
                .first()
            )
            inverse = (
                ExchangeRate.objects.filter(base=self.code, quote=currency, effective_date__lte=on)
                .order_by("-effective_date")
                .values_list("rate", "effective_date")
                .first()
            )
            candidates = []
            if direct and direct[0]:
                candidates.append((direct[1], Decimal(direct[0])))
            if inverse and inverse[0]:
                candidates.append((inverse[1], Decimal(1) / Decimal(inverse[0])))
            self._rates[key] = max(candidates)[1] if candidates else None
        return self._rates[key]

    def convert(self, amount: Decimal, currency: str, on: datetime.date) -> tuple[Decimal, bool]:
        """(amount in the reporting currency, whether a rate was found); without a rate the amount is kept as is."""
        rate = self.rate(currency, on)
        if rate is None:
            return quantize(amount, self.code), False
        return quantize(amount * rate, self.code), True
