"""Benchmarks of the pipeline as its users judge it: `python -m bench` writes bench/RESULTS.md."""
