"""Months as the metrics see them: a period is the first day of a month; figures are as of its end (or now)."""

import datetime
from dataclasses import dataclass

from django.utils import timezone

from apps.core.errors import BusinessError


@dataclass(frozen=True)
class Period:
    """One calendar month, with the moment its point-in-time figures are taken."""

    start: datetime.date

    @classmethod
    def of(cls, day: datetime.date) -> "Period":
        return cls(day.replace(day=1))

    @classmethod
    def parse(cls, text: str) -> "Period":
        """'2026-11' (or '2026-11-01') as a period; anything else is a readable error."""
        try:
            return cls(datetime.date.fromisoformat(f"{text.strip()[:7]}-01"))
        except (ValueError, AttributeError):
            raise BusinessError(
                f"'{text}' is not a month.",
                fix="Give the period as year and month, e.g. 2026-11.",
                technical=f"period={text!r}",
            ) from None

    @property
    def label(self) -> str:
        return f"{self.start:%Y-%m}"

    @property
    def end(self) -> datetime.date:
        """The last day of the month."""
        return self.next().start - datetime.timedelta(days=1)

    def next(self) -> "Period":
        year, month = (self.start.year + 1, 1) if self.start.month == 12 else (self.start.year, self.start.month + 1)
        return Period(datetime.date(year, month, 1))

    def previous(self) -> "Period":
        return Period.of(self.start - datetime.timedelta(days=1))

    def start_at(self) -> datetime.datetime:
        return timezone.make_aware(datetime.datetime.combine(self.start, datetime.time.min))

    def end_at(self) -> datetime.datetime:
        """The first moment after the month (exclusive bound for timestamps)."""
        return self.next().start_at()

    def as_of(self, now: datetime.datetime | None = None) -> datetime.datetime:
        """When point-in-time figures are taken: the end of the month, or now for the running month."""
        now = now or timezone.now()
        return min(self.end_at(), now)

    def as_of_date(self, now: datetime.datetime | None = None) -> datetime.date:
        """The last day counted: the month's last day, or today for the running month."""
        return min(self.end, timezone.localdate(now or timezone.now()))

    def days(self, now: datetime.datetime | None = None) -> int:
        """Days of the month counted so far (all of them once it is over)."""
        return (self.as_of_date(now) - self.start).days + 1


def recent_periods(months: int, now: datetime.datetime | None = None) -> list[Period]:
    """The running month and the `months` before it, oldest first."""
    current = Period.of(timezone.localdate(now or timezone.now()))
    periods = [current]
    for _ in range(months):
        periods.append(periods[-1].previous())
    return list(reversed(periods))
