//! Workspace root: owns the runnable `examples/` and the integration `tests/`; not published.
