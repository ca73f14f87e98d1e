"""Tests of index/: building, merging and using the metadata index (dask clusters, S3, crashes)."""
