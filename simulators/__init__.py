"""Stand-ins for the external systems the sync talks to (tests, the demo and benchmarks)."""
