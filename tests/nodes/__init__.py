"""Tests of nodes/: the adaptive read-ahead, and a state round trip for every BaseNode."""
