"""Layers with hand-written forward and backward passes (see `base` for the protocol)."""

from .activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .base import EVAL, Context, Layer, layer_classes
from .conv import Conv2D
from .dense import Dense
from .dropout import Dropout
from .gru import GRU
from .lstm import LSTM
from .normalization import BatchNorm
from .pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from .reshape import Flatten
from .recurrent import Recurrent
from .rnn import RNN

__all__ = ["Context", "EVAL", "Layer", "layer_classes", "Dense", "Identity", "Sigmoid", "Tanh",
           "ReLU", "LeakyReLU", "Softmax", "Conv2D", "MaxPool2D", "AvgPool2D",
           "GlobalAvgPool2D", "Flatten", "Dropout", "BatchNorm", "Recurrent", "RNN", "LSTM",
           "GRU"]
