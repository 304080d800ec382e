"""Problems found in a configuration document, each tied to its place in the file."""

from dataclasses import dataclass

from apps.core.errors import BusinessError


@dataclass(frozen=True)
class LocatedError:
    """One problem and where it is, e.g. `rate_cards[0].versions[1].lines[2].bill_rate`."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class Problems(list):
    """The problems collected while reading a document; reading goes on so all are reported at once."""

    def add(self, location: str, message: str) -> None:
        self.append(LocatedError(location, message))


class ConfigError(BusinessError):
    """A configuration document that cannot be imported (or exported) as it stands; nothing was written."""

    code = "configuration_invalid"

    def __init__(self, errors: list[LocatedError], *, source_name: str = ""):
        self.errors = list(errors)
        count = len(self.errors)
        subject = f"The configuration document {source_name}" if source_name else "The configuration document"
        super().__init__(
            f"{subject} has {count} problem{'s' if count != 1 else ''}; nothing was imported.",
            fix="Correct each listed location in the document and import it again.",
            technical="\n".join(str(error) for error in self.errors),
            context={"errors": [{"location": e.location, "message": e.message} for e in self.errors]},
        )

    def __str__(self) -> str:
        return "\n".join([self.message, *(f"  {error}" for error in self.errors)])
