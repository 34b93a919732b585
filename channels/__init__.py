"""One module per platform, the capability registry, and per-platform rendering and splitting."""
