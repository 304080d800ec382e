"""The mapping admin: cross-references, value maps and reference values (records.py), source profiles with their
preview and publishing (profiles.py)."""

from . import profiles, records

__all__ = ["profiles", "records"]
