"""What goes wrong with a checkpoint file: each error names the file and the problem."""

from __future__ import annotations

from ..model import ParamsMismatchError

__all__ = ["CheckpointError", "NotACheckpointError", "CorruptCheckpointError",
           "CheckpointVersionError", "ArchitectureMismatchError"]


class CheckpointError(ValueError):
    """A file that cannot be loaded as a checkpoint; the message names the file."""


class NotACheckpointError(CheckpointError):
    """The file is something else: empty, a pickle, an image, a safetensors file of another
    program..."""


class CorruptCheckpointError(CheckpointError):
    """A checkpoint that was damaged: truncated, a broken header, a checksum mismatch."""


class CheckpointVersionError(CheckpointError):
    """A checkpoint written in a newer format than this xbackprop reads."""


class ArchitectureMismatchError(CheckpointError, ParamsMismatchError):
    """Parameters whose shapes do not fit the model they are loaded into."""
