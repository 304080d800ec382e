"""Workflow definitions: the steps of each workflow and the context a step function receives."""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from apps.core.errors import BusinessError
from apps.systems.models import ConnectedSystem

from .models import Step, Transaction


@dataclass(frozen=True)
class StepSpec:
    """One planned step: its name (the method `step_<name>` runs it), a title people read, and its target."""

    name: str
    title: str
    target: str | None = None  # system kind: crm, psa, erp, billing
    max_attempts: int = 6


@dataclass(frozen=True)
class Subject:
    """What a transaction is about, for lists, search and the exception queue."""

    business_key: str = ""
    label: str = ""
    object_type: str = ""
    object_id: int | None = None
    value_at_risk: object = None
    currency: str = ""


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
        from apps.connectors.registry import adapter_for

        return adapter_for(system or self.target, correlation_id=self.correlation_id, recorder=self.calls.append)


class WorkflowDefinition(ABC):
    """Base for workflows: plan the steps from the input, run each step, and react to completion/exception."""

    name: str = ""
    owner_role: str = "finance_ops"

    @abstractmethod
    def plan(self, data: dict) -> list[StepSpec]:
        """The steps this input needs, in order."""

    def subject(self, data: dict) -> Subject:
        return Subject()

    def run(self, step_name: str, ctx: StepContext):
        handler = getattr(self, f"step_{step_name}", None)
        if handler is None:
            raise BusinessError(
                f"The workflow {self.name} has no step '{step_name}'.",
                technical=f"{type(self).__name__}.step_{step_name} is missing",
            )
        return handler(ctx)

    def on_complete(self, txn: Transaction) -> None:  # noqa: B027  (optional hook)
        """Runs inside the transaction that completes the workflow."""

    def on_exception(self, txn: Transaction, error: BusinessError) -> None:  # noqa: B027  (optional hook)
        """Runs inside the transaction that turns the workflow into an exception."""


_REGISTRY: dict[str, WorkflowDefinition] = {}


def register(cls):
    """Class decorator: make a workflow available by its name."""
    _REGISTRY[cls.name] = cls()
    return cls


def workflow_for(name: str) -> WorkflowDefinition:
    from . import workflows  # noqa: F401  (registers every workflow)

    try:
        return _REGISTRY[name]
    except KeyError:
        raise BusinessError(f"There is no workflow called '{name}'.") from None


def target_system(kind: str | None) -> ConnectedSystem | None:
    """The enabled system of a kind that workflows write to (one per kind in this product's model)."""
    if kind is None:
        return None
    return ConnectedSystem.objects.filter(kind=kind, enabled=True).order_by("pk").first()
