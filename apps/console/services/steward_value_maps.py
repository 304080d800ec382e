"""Value maps as CSV: export, a preview of what an import would change, and an all-or-nothing import.

A file names entries by (value map, source value, effective from). A line whose key exists changes that
entry; a new key adds one; entries the file does not name are left as they are. Before anything is
written the whole file is checked against the result it would produce: an unknown value map, a missing
or malformed value, a line that repeats another, periods of one source value that would overlap, or
bytes that are not UTF-8 each refuse the file with the line they are on, and nothing is applied.
"""

import csv
import datetime
import io
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.core.context import audit_context
from apps.core.errors import BusinessError
from apps.core.history import save_if_changed
from apps.mapping.models import ValueMap, ValueMapEntry

COLUMNS = ["value_map", "source_value", "target_value", "effective_from", "effective_to", "note"]
REQUIRED = {"value_map", "source_value", "target_value", "effective_from"}
MAX_BYTES = 5 * 1024 * 1024


class ValueMapFileRefused(BusinessError):
    code = "value_map_file_refused"


@dataclass
class PlannedLine:
    """One line of the file and what importing it would do."""

    line: int
    value_map: str
    source_value: str
    target_value: str
    effective_from: datetime.date | None
    effective_to: datetime.date | None
    note: str
    action: str = ""  # add, change, unchanged, error
    entry: ValueMapEntry | None = None
    before: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def period(self) -> str:
        start = self.effective_from.isoformat() if self.effective_from else "?"
        return f"{start} to {self.effective_to.isoformat() if self.effective_to else 'open-ended'}"


@dataclass
class ImportPlan:
    """What a file would change; `problems` are (line, message) and refuse the whole file."""

    lines: list[PlannedLine] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.lines)

    def count(self, action: str) -> int:
        return sum(1 for line in self.lines if line.action == action)


def value_maps_export_csv(names: list[str] | None = None) -> str:
    """Every entry of the named value maps (all maps if none), one line each, in the import format."""
    entries = ValueMapEntry.objects.select_related("value_map").order_by(
        "value_map__name", "source_value", "effective_from"
    )
    if names:
        entries = entries.filter(value_map__name__in=names)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for entry in entries:
        writer.writerow(
            [
                entry.value_map.name,
                entry.source_value,
                entry.target_value,
                entry.effective_from.isoformat(),
                entry.effective_to.isoformat() if entry.effective_to else "",
                entry.note,
            ]
        )
    return out.getvalue()


def _decode(data: bytes, plan: ImportPlan) -> str | None:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        for number, raw in enumerate(data.split(b"\n"), start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                plan.problems.append(
                    (
                        number,
                        f"Line {number} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}). "
                        "Save the file as CSV UTF-8 and upload it again.",
                    )
                )
        return None


def _date(text: str, name: str, line: PlannedLine, *, required: bool) -> datetime.date | None:
    text = (text or "").strip()
    if not text:
        if required:
            line.errors.append(f"{name} is empty.")
        return None
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        line.errors.append(f"{name} '{text}' is not a date like 2026-01-31.")
        return None


def value_maps_import_plan(data: bytes) -> ImportPlan:
    """Read and check a value-map CSV; what each line would do, or why the file is refused (nothing written)."""
    plan = ImportPlan()
    if len(data) > MAX_BYTES:
        plan.problems.append((0, f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB; split it by value map."))
        return plan
    text = _decode(data, plan)
    if text is None:
        return plan
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = sorted(REQUIRED - set(header))
    unknown = sorted(set(header) - set(COLUMNS))
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown column(s) {', '.join(unknown)}")
        plan.problems.append((1, f"Line 1 (the header): {'; '.join(parts)}. Expected: {','.join(COLUMNS)}."))
        return plan
    maps = {value_map.name: value_map for value_map in ValueMap.objects.all()}
    for row in reader:
        row = {(key or "").strip(): (value or "").strip() for key, value in row.items() if key is not None}
        line = PlannedLine(
            line=reader.line_num,
            value_map=row.get("value_map", ""),
            source_value=row.get("source_value", ""),
            target_value=row.get("target_value", ""),
            effective_from=None,
            effective_to=None,
            note=row.get("note", ""),
        )
        if line.value_map not in maps:
            line.errors.append(f"there is no value map '{line.value_map}' (unknown key).")
        if not line.source_value:
            line.errors.append("source_value is empty.")
        if not line.target_value:
            line.errors.append("target_value is empty.")
        line.effective_from = _date(row.get("effective_from"), "effective_from", line, required=True)
        line.effective_to = _date(row.get("effective_to"), "effective_to", line, required=False)
        if line.effective_from and line.effective_to and line.effective_to < line.effective_from:
            line.errors.append("effective_to is before effective_from.")
        plan.lines.append(line)
    if not plan.lines:
        plan.problems.append((1, "The file has a header but no entries."))
        return plan
    _match(plan, maps)
    _check_overlaps(plan, maps)
    for line in plan.lines:
        if line.errors:
            line.action = "error"
            plan.problems.extend((line.line, f"Line {line.line}: {message}") for message in line.errors)
    plan.problems.sort(key=lambda problem: problem[0])
    return plan


def _norm(value_map: ValueMap, source: str) -> str:
    return source if value_map.case_sensitive else source.casefold()


def _match(plan: ImportPlan, maps: dict[str, ValueMap]) -> None:
    """Find the entry each line names, and whether it would change it."""
    named = {line.value_map for line in plan.lines if line.value_map in maps}
    existing: dict[tuple, ValueMapEntry] = {}
    for entry in ValueMapEntry.objects.filter(value_map__name__in=named).select_related("value_map"):
        existing[(entry.value_map.name, _norm(entry.value_map, entry.source_value), entry.effective_from)] = entry
    seen: dict[tuple, int] = {}
    for line in plan.lines:
        if line.value_map not in maps or not line.effective_from:
            continue
        key = (line.value_map, _norm(maps[line.value_map], line.source_value), line.effective_from)
        if key in seen:
            line.errors.append(f"repeats line {seen[key]} (same value map, source value and effective_from).")
            continue
        seen[key] = line.line
        entry = existing.get(key)
        line.entry = entry
        if entry is None:
            line.action = "add"
            continue
        values = {"target_value": line.target_value, "effective_to": line.effective_to, "note": line.note}
        line.before = {name: getattr(entry, name) for name, value in values.items() if getattr(entry, name) != value}
        line.action = "change" if line.before else "unchanged"


def _check_overlaps(plan: ImportPlan, maps: dict[str, ValueMap]) -> None:
    """Periods of one source value may not overlap once the file is applied (file lines and kept entries)."""
    periods: dict[tuple, list[tuple[datetime.date, datetime.date | None, str, PlannedLine | None]]] = {}
    replaced = {line.entry.pk for line in plan.lines if line.entry is not None}
    named = {line.value_map for line in plan.lines if line.value_map in maps}
    for entry in ValueMapEntry.objects.filter(value_map__name__in=named).select_related("value_map"):
        if entry.pk not in replaced:
            key = (entry.value_map.name, _norm(entry.value_map, entry.source_value))
            label = f"the existing entry {entry.source_value} → {entry.target_value} ({entry.period_label()})"
            periods.setdefault(key, []).append((entry.effective_from, entry.effective_to, label, None))
    for line in plan.lines:
        if line.value_map in maps and line.effective_from and not line.errors:
            key = (line.value_map, _norm(maps[line.value_map], line.source_value))
            periods.setdefault(key, []).append((line.effective_from, line.effective_to, f"line {line.line}", line))
    far = datetime.date.max
    for spans in periods.values():
        spans.sort(key=lambda span: span[0])
        for index, (start, end, label, line) in enumerate(spans):
            for other_start, other_end, other_label, other_line in spans[index + 1 :]:
                if other_start <= (end or far) and start <= (other_end or far):
                    for mine, theirs in ((line, other_label), (other_line, label)):
                        if mine is not None:
                            mine.errors.append(
                                f"the period {mine.period} of '{mine.source_value}' overlaps {theirs}. "
                                "End one the day before the other starts."
                            )


@transaction.atomic
def value_maps_import(*, data: bytes, actor, reason: str) -> ImportPlan:
    """Apply a value-map CSV all or nothing, as one audited change (who, why, this request's correlation id)."""
    if not reason.strip():
        raise ValueMapFileRefused("Say why you import this file; auditors read it in the history.", fix="Add a reason.")
    plan = value_maps_import_plan(data)
    if not plan.ok:
        raise ValueMapFileRefused(
            f"The file was refused: {len(plan.problems)} problem(s); nothing was applied.",
            fix="Correct the lines named in the report and upload the file again.",
            context={"problems": plan.problems},
        )
    maps = {value_map.name: value_map for value_map in ValueMap.objects.all()}
    with audit_context(actor=actor, reason=reason.strip()):
        # Changes first: an import that ends an entry and adds its successor must shorten the old one before.
        for line in sorted(plan.lines, key=lambda item: item.action != "change"):
            try:
                if line.action == "change":
                    save_if_changed(
                        line.entry, target_value=line.target_value, effective_to=line.effective_to, note=line.note
                    )
                elif line.action == "add":
                    entry = ValueMapEntry(
                        value_map=maps[line.value_map],
                        source_value=line.source_value,
                        target_value=line.target_value,
                        effective_from=line.effective_from,
                        effective_to=line.effective_to,
                        note=line.note,
                    )
                    entry.full_clean()
                    entry.save()
            except ValidationError as exc:
                raise ValueMapFileRefused(
                    f"Line {line.line} cannot be applied: {'; '.join(exc.messages)} Nothing was applied.",
                    fix="Correct that line and upload the file again.",
                ) from None
    return plan
