//! Tests only: see `tests/`. They read `template.yaml` and `events/` at the workspace root.
