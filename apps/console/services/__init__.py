"""Console services: one module per page family (home_*, exception_*, timeline_*, audit_*, steward_*)."""
