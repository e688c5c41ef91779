"""Installing the box onto a Raspberry Pi (see install.py)."""
