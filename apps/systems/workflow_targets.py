"""The kinds of system each workflow writes to, declared by the workflows themselves as they register.

The workflows live in `apps.sync`, above this app; they declare what they write to here so routes can be
checked (in the admin, the API and the configuration import) without this app importing them.
"""

_WORKFLOW_TARGETS: dict[str, frozenset[str]] = {}


def declare_workflow(name: str, kinds) -> None:
    """Record the kinds of system a workflow writes to."""
    _WORKFLOW_TARGETS[str(name)] = frozenset(kinds)


def workflow_targets() -> dict[str, frozenset[str]]:
    """Workflow name -> kinds of system it writes to, for every registered workflow."""
    return dict(_WORKFLOW_TARGETS)
