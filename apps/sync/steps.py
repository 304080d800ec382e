"""What a step function receives and returns: shared by the engine that runs steps and the workflows that define them.

This module sits below both (it imports neither), so the engine, the registry and every workflow can use
these types without importing each other.
"""

from dataclasses import dataclass, field

from apps.connectors.registry import adapter_for
from apps.core.errors import BusinessError, ErrorClass
from apps.systems.models import ConnectedSystem

from .models import Step, Transaction


@dataclass
class StepResult:
    """What a step function produced.

    `apply` runs inside the finishing transaction, together with marking the step done: canonical
    writes and cross-references go there so they commit atomically with the step's success.
    """

    output: dict = field(default_factory=dict)
    apply: object = None  # Callable[[], dict | None]
    skipped: str = ""  # reason, when the step had nothing to do


class Retryable(BusinessError):
    """A failure worth retrying (network, timeouts, 5xx, 429, a database hiccup)."""

    error_class = ErrorClass.TRANSIENT
    code = "transient"

    def __init__(self, message: str, *, retry_at=None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_at = retry_at


class NoTargetSystem(BusinessError):
    code = "no_target_system"


@dataclass
class StepContext:
    """What a running step sees: the transaction, its (possibly edited) input, earlier outputs, connectors."""

    transaction: Transaction
    step: Step
    calls: list = field(default_factory=list)

    @property
    def input(self) -> dict:
        if self.step.input_override is not None:
            return self.step.input_override
        return self.transaction.effective_input

    @property
    def state(self) -> dict:
        return self.transaction.state

    @property
    def idempotency_key(self) -> str:
        return self.step.idempotency_key

    @property
    def correlation_id(self) -> str:
        return self.transaction.correlation_id

    @property
    def target(self) -> ConnectedSystem:
        if self.step.target_system is None:
            raise NoTargetSystem(
                f"Step '{self.step.title}' needs a connected system but none is enabled for it.",
                fix="Enable or connect the system in Connected systems, then re-run the transaction.",
            )
        return self.step.target_system

    def connector(self, system: ConnectedSystem | None = None):
        """The adapter for the step's target (or another system), recording every call on this attempt."""
        return adapter_for(
            system or self.target,
            correlation_id=self.correlation_id,
            root_correlation_id=self.transaction.root_correlation_id,
            recorder=self.calls.append,
        )
