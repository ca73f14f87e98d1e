"""Tests of graph/: the assembled loader end to end: resume, workers, transport, close, torchrun, crash soak."""
