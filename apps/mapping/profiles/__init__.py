"""Source profiles: a steward's declarative, versioned mapping from one vendor payload to canonical commands.

A profile is plain JSON (docs/source-profiles.md). The modules here read it, and none of them writes to the database:

- `catalogue`: the canonical commands and their fields, and every setting, type and operator a profile may use;
- `paths`: the path language ('data.object.lines[*].amount', '$fetched.deal.id') and reading a path in a payload;
- `validation`: `validate_spec(spec)`, everything wrong with a profile, each message located;
- `engine`: `apply_profile(spec, payload, …)` turns one payload into canonical commands (value-map lookups are its
  only reads), with `results`, `conditions` and `values` (reading and converting one value) beside it;
  `profile_matches(spec, …)` says whether a profile reads an event.

Cutting a raw delivery into events is inbound's job: `apps.inbound.envelopes.split_delivery`.
"""
