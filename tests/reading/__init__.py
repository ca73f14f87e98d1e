"""Tests of reading/: metadata, readers, the fast decode paths, every real format, and crop pushdown."""
