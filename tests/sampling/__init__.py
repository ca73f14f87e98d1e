"""Tests of sampling/: the counter-based draws, timepoint and crop planning, and sharding."""
