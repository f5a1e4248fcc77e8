"""The sync's edges: Redis state, batching, budgets, and the per-employee sync with its I/O."""
