"""Callbacks: what `fit` runs beside its loop — after every step, after each row of the
history — and keeps in its checkpoints. One small module each (as Keras 3's callbacks/):

    base.py            Callback, the function form, which callbacks act per step
    history.py         History, the rows fit records
    early_stopping.py  EarlyStopping
"""

from .base import Callback, FunctionCallback, as_callbacks, step_callbacks
from .early_stopping import EarlyStopping
from .history import History

__all__ = ["Callback", "FunctionCallback", "EarlyStopping", "History", "as_callbacks",
           "step_callbacks"]
