"""Source profiles that ship with the product, written from the vendors' public documentation.

Each JSON file here holds one profile: its name, version, description, the vendor documentation it was
written from, the sample delivery it is tested on (under fixtures/webhooks/), and the spec itself
(docs/source-profiles.md). `builtin_profiles()` returns them shaped like SourceProfile rows.
"""

import json
from pathlib import Path

PROFILE_DIR = Path(__file__).resolve().parent
REPOSITORY_ROOT = PROFILE_DIR.parents[2]


def builtin_profiles() -> list[dict]:
    """Every built-in profile as SourceProfile field values (name, version, vendor, event_types, spec, …)."""
    profiles = []
    for path in sorted(PROFILE_DIR.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        spec = document["spec"]
        sources = document.get("documentation", [])
        description = document.get("description", "")
        if len(sources) > 1:
            description += "\n\nVendor documentation:\n" + "\n".join(f"- {url}" for url in sources)
        sample = document.get("sample")
        profiles.append(
            {
                "name": document["name"],
                "version": document["version"],
                "vendor": spec["vendor"],
                "event_types": list(spec["event_types"]),
                "schema_version": spec.get("schema_version", ""),
                "status": "active",
                "builtin": True,
                "description": description,
                "documentation_url": sources[0] if sources else "",
                "spec": spec,
                "sample_payload": _load(sample) if sample else None,
            }
        )
    return profiles


def _load(relative: str):
    return json.loads((REPOSITORY_ROOT / relative).read_text(encoding="utf-8"))
