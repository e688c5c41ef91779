"""The branch box: engine, journal, supervisor, uplink and local web."""

__version__ = "0.1.0"
