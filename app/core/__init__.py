"""The pure core: parsing, mapping, skip rules and the per-employee decision. No I/O here."""
