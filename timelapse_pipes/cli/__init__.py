"""The ``timelapse-pipes`` command: demo, inspect, index, preview and bench.

Every error a user can cause ends the command with one line on stderr and a non-zero exit.
"""

from .main import main

__all__ = ["main"]
