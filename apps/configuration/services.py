"""Configuration as code: export systems, ownership rules, value maps, rate cards and source profiles as one document,
and import it.

An import validates the whole document first (every problem reported with its location), then writes
everything in one transaction as the system user, with a history reason naming the document and its
SHA-256. Only rows whose values change are saved, so importing the same document twice writes nothing.
"""

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import models, transaction

from apps.core.context import system_context

from .errors import ConfigError, LocatedError, Problems
from .parser import document_digest
from .reading import show
from .sections import REGISTRY
from .sections.base import (
    ACTIONS,
    DELETED,
    UNCHANGED,
    Change,
    PlanContext,
    SectionPlan,
    link_parents,
    located_model_errors,
)

FORMAT_VERSION = 1


@dataclass
class SectionReport:
    """What an import did (or, in a dry run, would do) to one section."""

    section: str
    changes: list[Change]

    def count(self, action: str) -> int:
        return sum(1 for change in self.changes if change.action == action)

    def counts(self) -> dict[str, int]:
        return {action: self.count(action) for action in ACTIONS}


@dataclass
class ImportReport:
    """The per-section plan of an import: created / updated / unchanged / deleted, row by row."""

    source_name: str
    digest: str
    dry_run: bool
    prune: bool
    sections: list[SectionReport] = field(default_factory=list)
    warnings: list[LocatedError] = field(default_factory=list)

    @property
    def reason(self) -> str:
        return history_reason(self.source_name, self.digest)

    @property
    def changed(self) -> bool:
        return any(change.action != UNCHANGED for report in self.sections for change in report.changes)

    def counts(self) -> dict[str, dict[str, int]]:
        return {report.section: report.counts() for report in self.sections}

    def lines(self) -> list[str]:
        """The report as text: a heading, then per section its counts and each row that changes."""
        heading = f"{self.reason}: " + (
            "dry run, nothing was written" if self.dry_run else ("applied" if self.changed else "nothing to change")
        )
        lines = [heading]
        for report in self.sections:
            actions = ACTIONS if self.prune else ACTIONS[:-1]
            lines.append(f"{report.section}: " + ", ".join(f"{report.count(a)} {a}" for a in actions))
            lines.extend(f"  {change.describe()}" for change in report.changes if change.action != UNCHANGED)
        lines.extend(f"warning: {warning}" for warning in self.warnings)
        return lines


def history_reason(source_name: str, digest: str) -> str:
    """The change reason on every history row an import writes."""
    return f"import_config {source_name} (sha256 {digest[:12]})"


def config_export(*, sections: list[str] | None = None, include_builtin: bool = False) -> dict:
    """The configuration as a version-1 document (plain JSON/YAML data, stable order, secret references only).

    Rows shipped with the product (built-in source profiles) are left out unless `include_builtin`.
    """
    keys = list(REGISTRY) if sections is None else list(sections)
    unknown = [key for key in keys if key not in REGISTRY]
    if unknown:
        raise ConfigError(
            [
                LocatedError("sections", f"unknown section {show(key)}; the sections are {', '.join(REGISTRY)}")
                for key in unknown
            ]
        )
    document = {"version": FORMAT_VERSION}
    for key, section in REGISTRY.items():
        if key in keys:
            options = {"include_builtin": include_builtin} if section.has_builtin_rows else {}
            document[key] = section.export(**options)
    return document


def config_import(
    *, document: dict, dry_run: bool, prune: bool, source_name: str, digest: str | None = None
) -> ImportReport:
    """Validate the whole document, then apply it in one transaction (or only report the plan in a dry run).

    Raises ConfigError listing every problem with its location; then nothing is written.
    `digest` is the SHA-256 of the file the document was read from (default: of the document's data).
    """
    digest = digest or document_digest(document)
    report = ImportReport(source_name=source_name, digest=digest, dry_run=dry_run, prune=prune)
    if dry_run:
        plans, report.warnings = _plan(document, prune=prune, source_name=source_name, lock=False)
    else:
        with transaction.atomic():
            plans, report.warnings = _plan(document, prune=prune, source_name=source_name, lock=True)
            with system_context(report.reason):
                _apply(plans, source_name=source_name)
    report.sections = [SectionReport(plan.key, plan.changes) for plan in plans]
    return report


def _plan(document, *, prune: bool, source_name: str, lock: bool) -> tuple[list[SectionPlan], list[LocatedError]]:
    problems = Problems()
    if not isinstance(document, dict):
        problems.add("", "the document must be a mapping with 'version' and the sections to import")
        raise ConfigError(problems, source_name=source_name)
    version = document.get("version")
    if "version" not in document:
        problems.add("version", f"this key is required; this console reads version {FORMAT_VERSION}")
    elif version != FORMAT_VERSION or isinstance(version, bool):
        problems.add(
            "version", f"this document is version {show(version)}; this console reads version {FORMAT_VERSION}"
        )
        raise ConfigError(problems, source_name=source_name)
    for key in document:
        if key != "version" and key not in REGISTRY:
            problems.add(str(key), f"unknown section {show(key)}; the sections are {', '.join(REGISTRY)}")
    ctx = PlanContext(problems=problems, prune=prune, sections=REGISTRY, lock=lock)
    for key, section in REGISTRY.items():
        if key in document:
            ctx.plans[key] = section.plan(document[key], ctx)
    for check in ctx.checks:
        check()
    _check_deletions(ctx)
    if problems:
        raise ConfigError(problems, source_name=source_name)
    return list(ctx.plans.values()), ctx.warnings


def _check_deletions(ctx: PlanContext) -> None:
    """A pruned row may only go if nothing that stays still refers to it (cross-references, contracts, rules...)."""
    deleted = {
        (type(change.instance), change.instance.pk)
        for plan in ctx.plans.values()
        for change in plan.changes
        if change.action == DELETED
    }
    listed = set().union(*(plan.listed for plan in ctx.plans.values()))
    for plan in ctx.plans.values():
        for change in plan.changes:
            if change.action != DELETED:
                continue
            users = [
                row
                for row in _dependents(change.instance)
                if (type(row), row.pk) not in deleted and (type(row), row.pk) not in listed
            ]
            if users:
                ctx.problems.add(
                    change.location,
                    f"{change.label} is not in this document, so --prune would delete it, but it is still used by "
                    f"{_describe_rows(users)}; keep it in the document, or remove what uses it first",
                )


def _dependents(instance: models.Model) -> list[models.Model]:
    """Rows that stop `instance` from being deleted: protected references and many-to-many grants to it.

    Rows the models delete along with it (CASCADE) are followed, since what protects them protects it too;
    a many-to-many link would vanish silently from a row that stays, so it counts as a use.
    """
    found = []
    for relation in instance._meta.get_fields(include_hidden=True):
        if not (relation.auto_created and not relation.concrete and relation.is_relation):
            continue
        related = relation.related_model
        on_delete = getattr(relation, "on_delete", None)
        if related._meta.auto_created or on_delete is models.DO_NOTHING:
            continue  # many-to-many link rows (seen through the relation itself) and history rows
        rows = related._base_manager.filter(**{relation.field.name: instance}).distinct()
        if relation.many_to_many or on_delete in (models.PROTECT, models.RESTRICT):
            found.extend(rows)
        elif on_delete is models.CASCADE:
            for row in rows:
                found.extend(_dependents(row))
    return found


def _describe_rows(rows: list[models.Model]) -> str:
    by_model = {}
    for row in rows:
        by_model.setdefault(row._meta, []).append(row)
    parts = []
    for meta, group in by_model.items():
        name = meta.verbose_name if len(group) == 1 else meta.verbose_name_plural
        examples = ", ".join(str(row) for row in group[:3]) + (", ..." if len(group) > 3 else "")
        parts.append(f"{len(group)} {name} ({examples})")
    return "; ".join(parts)


def _apply(plans: list[SectionPlan], *, source_name: str) -> None:
    for plan in plans:
        for change in plan.changes:
            if not change.late:
                _write(change, source_name=source_name)
    # Rows other sections may refer to (systems, value maps, rate cards) are deleted once those have been rewritten.
    for plan in reversed(plans):
        for change in plan.changes:
            if change.late:
                _write(change, source_name=source_name)


def _write(change: Change, *, source_name: str) -> None:
    instance = change.instance
    if change.action == DELETED:
        instance.delete()
        return
    if change.save:
        link_parents(instance)
        try:
            instance.full_clean()
        except ValidationError as exc:
            raise ConfigError(
                located_model_errors(exc, change.location, change.keys), source_name=source_name
            ) from None
        instance.save()
    for name, rows in change.m2m.items():
        getattr(instance, name).set(rows)
