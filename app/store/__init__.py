"""Everything the sync keeps in Redis: keys, runs, history, budget, locks, configs, queue."""
