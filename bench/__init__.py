"""Benchmarks and soak runs against real server processes (see README, "Load and soak")."""
