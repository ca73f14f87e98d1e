"""Benchmarks of ``timelapse_pipes`` against faithful re-implementations of the cyto-dl baselines
and the raw-reader limit. Run ``python -m benchmarks --help`` from the repository root.

These are measurements, not tests: nothing here asserts on a time. Every measurement interleaves
the methods it compares (A, B, A, B, ...) in one process and reports medians, because the machine
is shared and noisy.
"""
