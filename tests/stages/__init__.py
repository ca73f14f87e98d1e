"""Tests of stages/: batch assembly, on_error handling, time-aware sampling, steps and spatial dims."""
