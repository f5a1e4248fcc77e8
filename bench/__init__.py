"""On-demand benchmarks of the sync service (docs/benchmarks.md); not part of CI."""
