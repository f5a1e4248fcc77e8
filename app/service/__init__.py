"""The use cases: accept a notice, start a run, sync an employee, reconcile, poll, admin."""
