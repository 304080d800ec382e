"""Workflow definitions: the steps of each workflow, and the registry every workflow adds itself to.

The registry imports no workflow: each module of `apps.sync.workflows` registers its workflows with
`@register` when it is imported, and `discover_workflows()` (run by the sync app when Django starts)
imports them all. The engine and the workflows share the step types of `apps.sync.steps`.
"""

import importlib
import pkgutil
from abc import ABC, abstractmethod
from dataclasses import dataclass

from apps.core.errors import BusinessError
from apps.systems.models import ConnectedSystem
from apps.systems.routing import RouteChoice, RouteMissing, choose_system, declare_workflow

from . import targets
from .models import Transaction
from .steps import StepContext, StepResult

WORKFLOWS_PACKAGE = "apps.sync.workflows"


@dataclass(frozen=True)
class StepSpec:
    """One planned step: its name (the method `step_<name>` runs it), a title people read, and its target."""

    name: str
    title: str
    target: str | None = None  # system kind: crm, psa, erp, billing
    # A step that writes back to a record (a deal, an account) goes to the enabled system of its kind that holds
    # that record, when exactly one does; otherwise routes decide. Names the object type (opportunity, customer).
    writes_back: str = ""
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


class WorkflowDefinition(ABC):
    """Base for workflows: plan the steps from the input, run each step, and react to completion/exception."""

    name: str = ""
    owner_role: str = "finance_ops"

    @abstractmethod
    def plan(self, data: dict) -> list[StepSpec]:
        """The steps this input needs, in order."""

    def subject(self, data: dict) -> Subject:
        return Subject()

    def target_kinds(self) -> set[str]:
        """The kinds of system this workflow writes to (what routes must cover)."""
        return {spec.target for spec in self.plan({}) if spec.target}

    def run(self, step_name: str, ctx: StepContext):
        handler = getattr(self, f"step_{step_name}", None)
        if handler is None:
            raise BusinessError(
                f"The workflow {self.name} has no step '{step_name}'.",
                technical=f"{type(self).__name__}.step_{step_name} is missing",
            )
        choice = self.route(step_name, ctx)
        result = handler(ctx)
        if choice is not None and isinstance(result, StepResult):
            result.output = {**result.output, "route": choice.as_output()}
        return result

    def route(self, step_name: str, ctx: StepContext) -> RouteChoice | None:
        """Choose the step's target by the routes in force for what the transaction is about (its legal entity).

        The step's target system is updated when the choice differs from the one planned at the start.
        """
        spec = next((s for s in self.plan(ctx.transaction.effective_input) if s.name == step_name), None)
        if spec is None or spec.target is None:
            return None
        choice = targets.route_step(ctx.transaction, spec.target, writes_back=spec.writes_back)
        if choice is not None and ctx.step.target_system_id != choice.system.pk:
            ctx.step.target_system = choice.system
            ctx.step.save(update_fields=["target_system", "updated_at"])
        return choice

    def on_complete(self, txn: Transaction) -> None:  # noqa: B027  (optional hook)
        """Runs inside the transaction that completes the workflow."""

    def on_exception(self, txn: Transaction, error: BusinessError) -> None:  # noqa: B027  (optional hook)
        """Runs inside the transaction that turns the workflow into an exception."""


_REGISTRY: dict[str, WorkflowDefinition] = {}


def register(cls):
    """Class decorator: make a workflow available by its name."""
    _REGISTRY[cls.name] = definition = cls()
    declare_workflow(cls.name, definition.target_kinds())
    return cls


def discover_workflows(package: str = WORKFLOWS_PACKAGE) -> list[str]:
    """Import every module of the workflows package, so each registers its workflows; returns the module names."""
    found = []
    for module in pkgutil.iter_modules(importlib.import_module(package).__path__, prefix=f"{package}."):
        importlib.import_module(module.name)
        found.append(module.name)
    return found


def workflow_for(name: str) -> WorkflowDefinition:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise BusinessError(f"There is no workflow called '{name}'.") from None


def target_system(kind: str | None, *, workflow: str = "", legal_entity: str = "") -> ConnectedSystem | None:
    """The system a workflow writes to for a kind (routes, else the one enabled system); None if none or ambiguous."""
    if kind is None:
        return None
    try:
        choice = choose_system(workflow=workflow, kind=kind, legal_entity=legal_entity)
    except RouteMissing:
        return None
    return choice.system if choice else None
