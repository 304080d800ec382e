"""Errors that say what is wrong in business words, what fixes it, and the technical detail beside it."""


class ErrorClass:
    """How the ledger treats a failure."""

    TRANSIENT = "transient"  # retry later: timeouts, 5xx, 429
    PERMANENT = "permanent"  # retrying will not help: 4xx from a target, bad credentials
    BUSINESS_RULE = "business_rule"  # the data breaks a business rule: inactive project, no rate
    OWNERSHIP_CONFLICT = "ownership_conflict"  # a system wrote a field it does not own
    MAPPING = "mapping"  # a value map, cross-reference or source profile is missing or wrong

    CHOICES = [
        (TRANSIENT, "Transient"),
        (PERMANENT, "Permanent"),
        (BUSINESS_RULE, "Business rule"),
        (OWNERSHIP_CONFLICT, "Ownership conflict"),
        (MAPPING, "Mapping"),
    ]


class BusinessError(Exception):
    """A failure a finance or delivery user can act on."""

    error_class = ErrorClass.BUSINESS_RULE
    code = "business_rule"

    def __init__(self, message: str, *, fix: str = "", technical: str = "", context: dict | None = None):
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.technical = technical
        self.context = context or {}

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "error_class": self.error_class,
            "message": self.message,
            "fix": self.fix,
            "technical": self.technical,
            "context": self.context,
        }

    def __str__(self) -> str:
        return self.message


class MappingError(BusinessError):
    error_class = ErrorClass.MAPPING
    code = "mapping"


class OwnershipConflict(BusinessError):
    error_class = ErrorClass.OWNERSHIP_CONFLICT
    code = "ownership_conflict"
