"""What every vendor adapter shares: its HTTP client, its vendor's error shape and a few conversions."""

import datetime
from urllib.parse import urlsplit

from ..errors import PermanentError
from ..http import HttpClient, generic_error


class Adapter:
    """One connected system seen through its vendor's API; subclasses implement a Protocol of interfaces.py."""

    vendor_label = ""
    idempotency_header = "Idempotency-Key"
    api_key_header = "X-API-Key"
    oauth_token_path: str | None = None  # the vendor's token endpoint, relative to the API's service root

    def __init__(self, system, *, correlation_id: str, recorder=None, session=None, root_correlation_id: str = ""):
        self.system = system
        self.http = HttpClient(
            system,
            correlation_id=correlation_id,
            root_correlation_id=root_correlation_id,
            recorder=recorder,
            session=session,
            idempotency_header=self.idempotency_header,
            api_key_header=self.api_key_header,
            oauth_token_url=self.default_token_url(system.base_url),
            error_parser=self.parse_error,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.system.slug}>"

    @property
    def name(self) -> str:
        return self.system.name

    def parse_error(self, body) -> tuple[str, str]:
        """The vendor's error message and code from an error answer."""
        return generic_error(body)

    def default_token_url(self, base_url: str) -> str | None:
        """The OAuth 2 token endpoint next to the API ('…/services/data/v60.0/' → '…/services/oauth2/token')."""
        if not self.oauth_token_path or not base_url:
            return None
        index = base_url.find("/services/")
        if index >= 0:
            return base_url[:index] + self.oauth_token_path
        parts = urlsplit(base_url)
        return f"{parts.scheme}://{parts.netloc}{self.oauth_token_path}"

    def missing_in_answer(self, what: str, action: str, body) -> PermanentError:
        """The target answered 2xx without something its API promises (an ID, a record)."""
        return PermanentError(
            f"{self.name} accepted the request to {action} but its answer has no {what}.",
            fix=f"Check in {self.name} whether the record exists, then record its ID by hand or re-run.",
            technical=f"answer: {str(body)[:500]}",
            system=self.system.slug,
        )


def replayed(response) -> bool:
    """Did the target answer from its idempotency store (an earlier attempt already did this)?"""
    return response.headers.get("Idempotent-Replayed", "").strip().lower() == "true"


def drop_empty(fields: dict) -> dict:
    """The fields that have a value (vendors treat an explicit null as 'clear this field')."""
    return {key: value for key, value in fields.items() if value is not None and value != ""}


def unix_seconds(day: datetime.date, *, end_of_day: bool = False) -> int:
    """A date as the Unix timestamp of its start (or last second) in UTC, as Chargebee-style APIs take dates."""
    moment = datetime.datetime.combine(day, datetime.time.max if end_of_day else datetime.time.min, datetime.UTC)
    return int(moment.timestamp())
