"""Names of the data options that the CLI offers before any data is read (no numpy here)."""

FILL_POLICIES: tuple[str, ...] = ("ffill", "bfill", "interpolate", "zero")
