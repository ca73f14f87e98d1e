"""Tests of cli/: the timelapse-pipes command line, and the quickstart notebook run end to end."""
