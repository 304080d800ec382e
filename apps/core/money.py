"""Money is a Decimal with an explicit currency; never a float."""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import models

# ISO 4217 codes the product accepts, with their minor units.
MINOR_UNITS = {
    "AED": 2, "AUD": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CNY": 2, "CZK": 2, "DKK": 2, "EUR": 2,
    "GBP": 2, "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2, "JPY": 0, "KRW": 0, "KWD": 3, "MXN": 2,
    "MYR": 2, "NOK": 2, "NZD": 2, "PHP": 2, "PLN": 2, "RON": 2, "SAR": 2, "SEK": 2, "SGD": 2, "THB": 2,
    "TRY": 2, "TWD": 2, "USD": 2, "ZAR": 2,
}  # fmt: skip
CURRENCY_CHOICES = [(code, code) for code in sorted(MINOR_UNITS)]

AMOUNT = {"max_digits": 18, "decimal_places": 2}
RATE = {"max_digits": 14, "decimal_places": 4}
QUANTITY = {"max_digits": 14, "decimal_places": 4}


def validate_currency(value: str):
    if value not in MINOR_UNITS:
        raise ValidationError(f"'{value}' is not a currency code this product knows (ISO 4217, e.g. USD, EUR, GBP).")


class CurrencyField(models.CharField):
    """A three-letter ISO 4217 currency code."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 3)
        kwargs.setdefault("choices", CURRENCY_CHOICES)
        super().__init__(*args, **kwargs)


def to_decimal(value, *, field: str = "amount") -> Decimal:
    """Parse a number into a Decimal without passing through float; refuse what is not a number."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        value = repr(value)
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"{field} '{value}' is not a number") from exc
    if not result.is_finite():
        raise ValueError(f"{field} '{value}' is not a finite number")
    return result


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round an amount to the currency's minor unit (half up, as invoices do)."""
    places = MINOR_UNITS.get(currency, 2)
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """123.45 USD → 12345; rounds to the currency's minor unit first (half up, as invoices do)."""
    return int(quantize(to_decimal(amount), currency).scaleb(MINOR_UNITS.get(currency, 2)))


def from_minor_units(value, currency: str) -> Decimal:
    """Cents (or the currency's minor unit) to a Decimal amount: 12345 USD -> 123.45."""
    return (to_decimal(value) / (Decimal(10) ** MINOR_UNITS.get(currency, 2))).quantize(
        Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2))
    )


@dataclass(frozen=True)
class Money:
    """An amount in one currency; adding two currencies is an error, not a silent conversion."""

    amount: Decimal
    currency: str

    def __post_init__(self):
        object.__setattr__(self, "amount", to_decimal(self.amount))

    def __add__(self, other: "Money") -> "Money":
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: "Money") -> "Money":
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor) -> "Money":
        return Money(self.amount * to_decimal(factor, field="factor"), self.currency)

    def rounded(self) -> "Money":
        return Money(quantize(self.amount, self.currency), self.currency)

    def _same_currency(self, other: "Money"):
        if other.currency != self.currency:
            raise ValueError(f"Cannot combine {self.currency} and {other.currency} amounts without a conversion.")

    def __str__(self) -> str:
        return f"{quantize(self.amount, self.currency):,} {self.currency}"
