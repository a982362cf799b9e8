"""Layers with hand-written forward and backward passes (see `base` for the protocol)."""

from .activations import GELU, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .attention import CausalSelfAttention
from .base import EVAL, Context, Layer, layer_classes
from .combinators import Parallel, Residual
from .conv import Conv2D
from .dense import Dense
from .dropout import Dropout
from .embedding import Embedding, PositionEmbedding
from .gru import GRU
from .lstm import LSTM
from .normalization import BatchNorm, LayerNorm
from .pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from .recurrent import Recurrent
from .reshape import Flatten
from .rnn import RNN

__all__ = ["Context", "EVAL", "Layer", "layer_classes", "Dense", "Identity", "Sigmoid", "Tanh",
           "ReLU", "LeakyReLU", "GELU", "Softmax", "Conv2D", "MaxPool2D", "AvgPool2D",
           "GlobalAvgPool2D", "Flatten", "Dropout", "BatchNorm", "LayerNorm", "Embedding",
           "PositionEmbedding", "CausalSelfAttention", "Residual", "Parallel", "Recurrent",
           "RNN", "LSTM", "GRU"]
