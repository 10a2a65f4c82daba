"""The runner's side of a run: the jobs, the worker processes, the run session, its estimate, fleets."""
