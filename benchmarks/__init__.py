"""Performance benchmarks; run them all with `make bench` (python benchmarks/run.py)."""
