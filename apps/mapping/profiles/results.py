"""What applying a profile produces: canonical commands, skips with a reason, fetch requests and located issues."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from .values import jsonable


@dataclass
class MappingIssue:
    """One thing wrong with a payload (or the profile), located in the profile and in the payload."""

    message: str
    field: str = ""  # the canonical field, e.g. 'amount' or 'lines[1].tax_amount'; '' for the whole item
    location: str = ""  # where in the profile, e.g. 'commands[0].fields.amount'
    path: str = ""  # where in the payload, e.g. 'data.object.amount_paid'
    fix: str = ""
    value: str = ""  # the offending value, shortened
    command: str = ""
    item: int | None = None
    source_event_id: str = ""

    def as_dict(self) -> dict:
        return jsonable(self.__dict__)


@dataclass
class Skip:
    """An item or command the profile chose not to map, and why."""

    reason: str
    command: str = ""
    item: int | None = None
    source_event_id: str = ""

    def as_dict(self) -> dict:
        return jsonable(self.__dict__)


@dataclass
class FetchRequest:
    """A thin notification: the record must be fetched from the source system, then the profile applied again."""

    object: str
    id: str
    params: dict = field(default_factory=dict)
    include: tuple[str, ...] = ()
    item: int | None = None
    source_event_id: str = ""

    @property
    def key(self) -> str:
        """The key under which the fetched record is passed back: apply_profile(..., fetched={key: record})."""
        return f"{self.object}:{self.id}"

    @property
    def message(self) -> str:
        return f"needs fetch of {self.object} {self.id} from the source system"

    def as_dict(self) -> dict:
        return jsonable({**self.__dict__, "include": list(self.include), "key": self.key, "message": self.message})


@dataclass
class CanonicalCommand:
    """One canonical command: its type, canonical data (Decimal amounts, date values) and where it came from."""

    type: str
    data: dict
    source_event_id: str = ""
    occurred_at: datetime.datetime | None = None
    item: int | None = None

    def as_dict(self) -> dict:
        return jsonable(self.__dict__)


@dataclass
class ProfileResult:
    """What applying a profile to one payload produced."""

    commands: list[CanonicalCommand] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    needs_fetch: list[FetchRequest] = field(default_factory=list)
    errors: list[MappingIssue] = field(default_factory=list)
    # Commands with errors, holding the fields that did map (an exception's amount and currency come from here).
    incomplete: list[CanonicalCommand] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict:
        """A JSON-safe rendering (amounts and dates as text) for the ledger, the preview and the API."""
        return {
            "commands": [command.as_dict() for command in self.commands],
            "skipped": [skip.as_dict() for skip in self.skipped],
            "needs_fetch": [request.as_dict() for request in self.needs_fetch],
            "errors": [issue.as_dict() for issue in self.errors],
        }
