"""Exception hierarchy: one small class per area, all deriving from :class:`GarError`.

Boundaries (CLI, node, bag evaluator) catch :class:`GarError` and report its message; anything
else is a bug. Lower-level errors are translated with ``raise ... from err``.
"""
from __future__ import annotations


class GarError(Exception):
    """Base class of every error gar_ros raises on purpose."""


class CheckpointError(GarError):
    """A model directory is missing, incomplete or not a GAR checkpoint."""


class InputError(GarError):
    """Bad input to the model or pipeline (image, region, question)."""


class ImageError(InputError):
    """An image cannot be used: wrong encoding, size mismatch, corrupt data, too large."""


class RegionError(InputError):
    """A region cannot be used: empty or mis-sized mask, box outside the image, NaN values."""


class TooManyRegionsError(RegionError):
    """More regions in one prompt than the checkpoint has prompt slots (``prompt_numbers``)."""


class UnknownRegionError(RegionError):
    """A region id that the current frame does not have."""

    def __init__(self, ids: list[str], message: str | None = None) -> None:
        self.ids = list(ids)
        super().__init__(message or f"unknown region id(s): {', '.join(self.ids)}")


class QueryError(InputError):
    """A question that cannot be parsed or is malformed."""


class BackendError(GarError):
    """An inference backend cannot be created or run (missing runtime, bad export)."""


class BagError(GarError):
    """A rosbag cannot be read or written."""
