"""The branch box: engine, journal, supervisor, uplink and local web."""

from common import __version__

# ``controller.__version__`` stays: an installed box's updater checks a new release with
# ``python -c "import controller; print(controller.__version__)"`` (controller/slots.py).
__all__ = ["__version__"]
