"""Reading the project's own source in tests."""

import ast


def parse(source: str) -> ast.AST:
    """ast.parse, once more after CPython 3.11's spurious "AST constructor recursion depth mismatch"
    (python/cpython#106905, seen when another thread of the test worker parsed at the same time)."""
    try:
        return ast.parse(source)
    except SystemError:
        return ast.parse(source)
