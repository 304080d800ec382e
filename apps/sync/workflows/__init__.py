"""Importing this package registers every workflow."""

from . import billing, changes, finance, inbound, opportunity, reference_data  # noqa: F401
