"""What went wrong calling a target system, classified the way the transaction ledger treats it.

- `TransientError`: try again later (no answer, 5xx, 429, rate limit). `retry_at` says when, if the
  target said so; `maybe_committed` says the target may have done the work before the answer was lost.
- `RateLimitWait`: our own shared rate limit held the call back before it left (the bucket is empty, or the
  target's Retry-After has not passed): a wait until `retry_at`, not a failure, so it spends no attempt.
- `PermanentError`: retrying the same call will not help (credentials, permissions, missing record,
  a configuration problem on our side).
- `TargetRejected`: the target refused the data (400/409/422); someone must correct the record or
  its mapping. Error class `business_rule`.

Each carries a business-readable `message`, a `fix`, and the vendor's own words in `technical`.
"""

import datetime

from apps.core.errors import BusinessError, ErrorClass


class ConnectorError(BusinessError):
    """A classified failure of one call to a target system."""

    error_class = ErrorClass.PERMANENT
    code = "connector_error"

    def __init__(
        self,
        message: str,
        *,
        fix: str = "",
        technical: str = "",
        context: dict | None = None,
        system: str = "",
        status: int | None = None,
        vendor_code: str = "",
        vendor_message: str = "",
        response_body=None,
    ):
        self.system = system
        self.status = status
        self.vendor_code = vendor_code
        self.vendor_message = vendor_message
        self.response_body = response_body  # parsed and masked; adapters read vendor details from it
        details = {"system": system, "status": status, "vendor_code": vendor_code}
        details.update(context or {})
        super().__init__(message, fix=fix, technical=technical, context=details)


class TransientError(ConnectorError):
    """The target did not answer, was overloaded or asked us to slow down: retry later."""

    error_class = ErrorClass.TRANSIENT
    code = "target_unavailable"
    attempt_spent = True  # a call was tried (or the target asked us to wait): it counts against the step's budget

    def __init__(
        self,
        message: str,
        *,
        retry_at: datetime.datetime | None = None,
        maybe_committed: bool = False,
        **kwargs,
    ):
        self.retry_at = retry_at
        self.maybe_committed = maybe_committed
        context = dict(kwargs.pop("context", None) or {})
        context["retry_at"] = retry_at.isoformat() if retry_at else None
        context["maybe_committed"] = maybe_committed
        kwargs.setdefault("fix", "Nothing to do: the step is retried automatically.")
        super().__init__(message, context=context, **kwargs)


class RateLimitWait(TransientError):
    """No request was sent: the shared rate limit says this call may start only at `retry_at`."""

    code = "rate_limit_wait"
    attempt_spent = False  # the ledger reschedules the step for its slot without using up an attempt

    def __init__(self, message: str, *, retry_at: datetime.datetime, **kwargs):
        kwargs.setdefault("fix", "Nothing to do: the step waits for its turn and runs then.")
        super().__init__(message, retry_at=retry_at, **kwargs)


class PermanentError(ConnectorError):
    """Retrying the same call will not help: credentials, permissions, a missing record, configuration."""

    error_class = ErrorClass.PERMANENT
    code = "target_refused_call"


class TargetRejected(ConnectorError):
    """The target refused the data itself (validation, duplicate, conflict); the record or its mapping must change."""

    error_class = ErrorClass.BUSINESS_RULE
    code = "target_rejected"


class ConcurrencyError(TransientError):
    """The record was locked or changed by someone else between our read and our write (a stale ETag, a row lock).

    Retrying later reads the record again and usually succeeds; nothing was written by the refused call.
    """

    code = "target_record_busy"
