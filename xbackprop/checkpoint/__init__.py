"""Checkpoints and saved models: everything a run needs to go on, in one file that loads on
any backend and opens in any safetensors reader. No pickle anywhere.

    xb.save_checkpoint("run/ckpt.safetensors", state, model=model, history=history)
    ckpt = xb.load_checkpoint("run/ckpt.safetensors", backend="jax")  # .state .model .history
    xb.save_model("digits.safetensors", model, params, input_shape=(64,), loss=loss)
    model, params, model_state = xb.load_model("digits.safetensors")

The rooms, each a layer over the one before (none imports `fit`):

    codec.py    the file: safetensors through the `safetensors` package, written
                atomically, the integrity check, what a file it refuses is
    records.py  a state's arrays as named tensors ("params.0.W", "opt_state.slots.mu.0.W")
                and its tree (lists, dicts, NamedTuples, step counts) as a JSON record
    files.py    save/load/info of checkpoints and saved models: the header's fields, the
                format version, the model rebuilt from its configuration and checked
    lock.py     one writer per folder: the writer's lock (flock), stale temporaries
    manager.py  a folder of numbered checkpoints: keep the newest and the best
    resume.py   what `fit(resume=True)` needs besides the state: its settings, the
                statistics of an unfinished epoch, the callbacks' states
    errors.py   CheckpointError and its kinds

Why safetensors and not `.npz`: a documented format that other tools read (a file made here
opens with `safetensors.numpy.load_file`, in PyTorch or in Rust) and that cannot hold code.
"""

from .codec import read_safetensors, write_safetensors
from .errors import (
    ArchitectureMismatchError,
    CheckpointError,
    CheckpointVersionError,
    CorruptCheckpointError,
    NotACheckpointError,
)
from .files import (
    FORMAT_VERSION,
    Checkpoint,
    CheckpointInfo,
    SavedModel,
    checkpoint_info,
    load_checkpoint,
    load_model,
    save_checkpoint,
    save_model,
)
from .lock import FolderInUseError, FolderLock
from .manager import CheckpointManager
from .records import forget_namedtuple, register_namedtuple, registered_namedtuples
from .resume import FolderHoldsRunError, NothingToTrainError, ResumeMismatchError

__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_info", "save_model", "load_model",
           "Checkpoint", "CheckpointInfo", "SavedModel", "CheckpointManager",
           "CheckpointError", "NotACheckpointError", "CorruptCheckpointError",
           "CheckpointVersionError", "ArchitectureMismatchError", "register_namedtuple",
           "forget_namedtuple", "registered_namedtuples", "read_safetensors",
           "write_safetensors", "FORMAT_VERSION", "FolderLock", "FolderInUseError",
           "ResumeMismatchError", "FolderHoldsRunError", "NothingToTrainError"]
