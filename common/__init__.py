"""Building blocks both the branch box and the centre use: password hashing, throttles,
cancellation helpers, logging, the HTTP server and its body limits, the shared SQLite
connection, clocks and time zones, file digests, shared errors, and the release version.

Imports nothing of ours but :mod:`protocols` (an import-linter contract in pyproject.toml).
"""

__version__ = "0.1.0"  # the one place a release's version is set (pyproject reads it)
