"""Sandbox systems under /sandbox/<kind>/ (see docs/sandbox.md)."""

urlpatterns: list = []
