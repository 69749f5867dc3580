"""Planner and executor: locks, retries, catch-up, and the run of one pipeline."""
