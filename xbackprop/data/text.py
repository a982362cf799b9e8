"""Text for character-level language models: a tokenizer, a loader, Tiny Shakespeare (shipped
with the package) and a batch source of random windows, nanoGPT's `get_batch`.

    data = xb.data.load_tiny_shakespeare()          # 1,115,394 characters, 65 distinct
    source = xb.data.TokenWindows(data.train, context=64, batch_size=12, seed=0)
    x, y = source(0)                                # (12, 64) ids and the ids one further on
    text = data.tokenizer.decode(x[0])

Everything here is host NumPy; ids are int32.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from importlib import resources
from typing import Any, NamedTuple

import numpy as np

from .files import DataFileError

__all__ = ["CharTokenizer", "TokenizerError", "load_text", "TextData", "load_tiny_shakespeare",
           "TokenWindows", "TINY_SHAKESPEARE_SHA256"]

#: SHA-256 of the uncompressed Tiny Shakespeare text (char-rnn's `input.txt`)
TINY_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


class TokenizerError(ValueError):
    """Text the tokenizer cannot encode, or ids it cannot decode."""


class CharTokenizer:
    """One id per character: the sorted characters of a text, id i for the i-th
    (nanoGPT's shakespeare_char: `chars = sorted(set(data))`). Tiny Shakespeare has 65.

    `encode(text) -> (n,) int32 ids`, `decode(ids) -> text`. A character the tokenizer never
    saw is an error that names it and where it is (a model cannot read a character it has no
    embedding for). `to_config()` is JSON, so a tokenizer is saved with a model and comes
    back with it (`CharTokenizer.from_config`).
    """

    def __init__(self, chars: str) -> None:
        if not isinstance(chars, str) or not chars:
            raise TokenizerError(f"CharTokenizer takes the characters it knows, a non-empty "
                                 f"str, not {chars!r}; build one with "
                                 "CharTokenizer.from_text(text)")
        if len(set(chars)) != len(chars):
            twice = sorted({c for c in chars if chars.count(c) > 1})
            raise TokenizerError(f"CharTokenizer: the characters must be distinct; "
                                 f"{''.join(twice)!r} appear more than once")
        self.chars = chars
        codes = np.array([ord(c) for c in chars], dtype=np.int64)
        # a lookup table from code point to id (-1: unknown), as large as the largest code
        self._ids = np.full(int(codes.max()) + 1, -1, dtype=np.int32)
        self._ids[codes] = np.arange(len(chars), dtype=np.int32)
        self._chars = np.array(list(chars))

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The tokenizer of every character in `text`, in sorted order."""
        if not isinstance(text, str) or not text:
            what = "an empty str" if text == "" else f"a {type(text).__name__}"
            raise TokenizerError(f"CharTokenizer.from_text takes a non-empty str, not {what}")
        return cls("".join(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """`text` as ids, `(len(text),)` int32."""
        if not isinstance(text, str):
            raise TokenizerError(f"encode takes a str, not {type(text).__name__}")
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        ids = np.full(codes.shape, -1, dtype=np.int32)
        known = codes < len(self._ids)
        ids[known] = self._ids[codes[known]]
        bad = np.flatnonzero(ids < 0)
        if bad.size:
            unknown = sorted({text[i] for i in bad})
            first = int(bad[0])
            raise TokenizerError(
                f"the text has {len(unknown)} character{'s' * (len(unknown) != 1)} the tokenizer "
                f"never saw: {', '.join(map(repr, unknown[:10]))}"
                f"{' ...' if len(unknown) > 10 else ''} (first at position {first}: "
                f"{text[max(0, first - 10):first + 10]!r}). It knows {self.vocab_size}: "
                f"{self.chars!r}. Remove or replace those characters.")
        return ids

    def decode(self, ids: Any) -> str:
        """The text of `ids` (any integer array or sequence, on the host)."""
        a = np.asarray(ids)
        if a.size and a.dtype.kind not in "iu":
            raise TokenizerError(f"decode takes integer ids, not {a.dtype} values")
        a = a.astype(np.int64).ravel()
        bad = np.flatnonzero((a < 0) | (a >= self.vocab_size))
        if bad.size:
            raise TokenizerError(f"id {int(a[bad[0]])} at position {int(bad[0])} is outside "
                                 f"the tokenizer's {self.vocab_size} ids [0, {self.vocab_size})")
        return "".join(self._chars[a]) if a.size else ""

    def to_config(self) -> dict[str, Any]:
        return {"type": "CharTokenizer", "chars": self.chars}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CharTokenizer:
        if not isinstance(config, dict) or config.get("type") != "CharTokenizer" or \
                not isinstance(config.get("chars"), str):
            raise TokenizerError(f"not a CharTokenizer's configuration: {config!r:.200}")
        return cls(config["chars"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharTokenizer) and other.chars == self.chars

    def __hash__(self) -> int:
        return hash(self.chars)

    def __repr__(self) -> str:
        shown = self.chars if len(self.chars) <= 40 else self.chars[:37] + "..."
        return f"CharTokenizer({self.vocab_size} characters: {shown!r})"


def load_text(path: str | os.PathLike, encoding: str = "utf-8") -> str:
    """A text file as one str (gzipped files, `.gz`, are read as they are). Universal newlines
    are off: the characters are the file's, `\\r` included."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DataFileError(f"cannot read {path}: {e.strerror or e}") from e
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DataFileError(f"{path} is a damaged or truncated gzip file ({e})") from e
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as e:
        raise DataFileError(f"{path} is not {encoding} text: byte {e.start} is "
                            f"{raw[e.start:e.start + 1]!r} ({e.reason}); pass encoding=... "
                            "(e.g. 'latin-1')") from e


class TextData(NamedTuple):
    """A text split for a language model: `train` and `val` are `(n,)` int32 ids of the
    first and the last part of `text`, and `tokenizer` turns ids back into characters."""

    train: np.ndarray
    val: np.ndarray
    tokenizer: CharTokenizer
    text: str


def split_text(text: str, val_fraction: float = 0.1,
               tokenizer: CharTokenizer | None = None) -> TextData:
    """`text` encoded (by `tokenizer`, else one built from the whole text) and split: the
    first 1 - `val_fraction` for training, the rest for validation (nanoGPT's 90 / 10)."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction is in (0, 1), not {val_fraction!r}")
    tokenizer = tokenizer or CharTokenizer.from_text(text)
    ids = tokenizer.encode(text)
    cut = int(len(ids) * (1 - val_fraction))
    if cut < 2 or len(ids) - cut < 2:
        raise ValueError(f"a text of {len(ids)} characters is too short to split "
                         f"{1 - val_fraction:.0%} / {val_fraction:.0%}")
    return TextData(ids[:cut], ids[cut:], tokenizer, text)


def load_tiny_shakespeare(val_fraction: float = 0.1) -> TextData:
    """Tiny Shakespeare, shipped with xbackprop: 40,000 lines of the plays (1,115,394
    characters, 65 distinct), char-rnn's `input.txt` (Karpathy, 2015); the text is checked
    against its SHA-256. Train on the first 90 %, validate on the last 10 % (nanoGPT)."""
    blob = resources.files(__package__).joinpath("tinyshakespeare.txt.gz").read_bytes()
    raw = gzip.decompress(blob)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != TINY_SHAKESPEARE_SHA256:
        raise DataFileError(f"the shipped Tiny Shakespeare is damaged (SHA-256 {digest}, "
                            f"expected {TINY_SHAKESPEARE_SHA256}); reinstall xbackprop")
    return split_text(raw.decode("utf-8"), val_fraction)


class TokenWindows:
    """A batch source of random windows of a token array: `source(step) -> (x, y)`, both
    `(batch_size, context)` int32, `y` the ids one position after `x`'s (the next
    character to predict at every position). nanoGPT's `get_batch`, keyed by the step:
    step s draws its windows' starts from a generator seeded by (seed, s), so a run resumed
    at step s sees exactly the batches it would have seen, and any step can be redrawn.

    tokens: `(n,)` integer ids, n > context.
    """

    def __init__(self, tokens: Any, context: int, batch_size: int, seed: int = 0) -> None:
        ids = np.asarray(tokens)
        if ids.ndim != 1 or ids.dtype.kind not in "iu":
            raise ValueError(f"TokenWindows takes a 1-d array of integer ids, not "
                             f"{ids.dtype} of shape {ids.shape}")
        for name, v in (("context", context), ("batch_size", batch_size)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"TokenWindows: {name} is an int >= 1, not {v!r}")
        if len(ids) <= context:
            raise ValueError(f"TokenWindows: {len(ids)} tokens hold no window of context "
                             f"{context} and its next token; use a context < {len(ids)}")
        self.tokens = ids.astype(np.int32, copy=False)
        self.context, self.batch_size, self.seed = int(context), int(batch_size), int(seed)
        self._offsets = np.arange(self.context)

    def starts(self, step: int) -> np.ndarray:
        """The first position of each of step `step`'s windows, `(batch_size,)`."""
        rng = np.random.default_rng([self.seed, int(step)])
        return rng.integers(0, len(self.tokens) - self.context, size=self.batch_size)

    def __call__(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        idx = self.starts(step)[:, None] + self._offsets          # (B, T) positions
        return self.tokens[idx], self.tokens[idx + 1]

    def __repr__(self) -> str:
        return (f"TokenWindows({len(self.tokens)} tokens, context={self.context}, "
                f"batch_size={self.batch_size}, seed={self.seed})")
