"""Benchmarks: `make bench` (python -m benchmarks) runs them and prints figures."""
