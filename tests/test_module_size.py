"""No god-modules: a module of `apps/` over ~500 lines says at its top why it stays whole."""

import ast
from pathlib import Path

from tests.sourcecode import parse

APPS_DIR = Path(__file__).resolve().parents[1] / "apps"
LIMIT = 500
REASON = "Over 500 lines on purpose:"


def test_every_long_module_says_why_it_stays_whole():
    unexplained = []
    for path in sorted(APPS_DIR.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        text = path.read_text()
        if text.count("\n") <= LIMIT:
            continue
        docstring = ast.get_docstring(parse(text)) or ""
        if REASON not in docstring:
            unexplained.append(f"{path.relative_to(APPS_DIR.parent)} ({text.count(chr(10))} lines)")
    assert not unexplained, (
        f"Split these modules, or say why they stay whole in their docstring ('{REASON} …'):\n" + "\n".join(unexplained)
    )
