"""Text for language models: the character tokenizer (round trip, unknown characters named,
saved as JSON), the text loader (gzip, bad encodings), Tiny Shakespeare as nanoGPT splits it,
and random windows keyed by the step."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

import xbackprop as xb
from xbackprop.data import CharTokenizer, DataFileError, TokenizerError, TokenWindows


def test_tokenizer_round_trip_and_sorted_ids():
    tok = CharTokenizer.from_text("hello, world\n")
    assert tok.chars == "\n ,dehlorw" and tok.vocab_size == 10
    ids = tok.encode("hello")
    assert ids.dtype == np.int32 and ids.tolist() == [5, 4, 6, 6, 7]
    assert tok.decode(ids) == "hello" and tok.decode([]) == "" and tok.encode("").shape == (0,)
    assert tok.decode(np.array([[5, 4], [6, 6]], dtype=np.int64)) == "hell"


def test_tokenizer_handles_characters_beyond_ascii():
    text = "naïve café — ünïcödé 🎭\r\n"
    tok = CharTokenizer.from_text(text)
    assert tok.decode(tok.encode(text)) == text


def test_unknown_characters_are_named_with_their_position():
    tok = CharTokenizer.from_text("abc ")
    with pytest.raises(TokenizerError, match=r"2 characters the tokenizer never saw: 'X', "
                                             r"'é' \(first at position 4: 'abc X"):
        tok.encode("abc Xaé")


def test_bad_ids_and_types_are_errors():
    tok = CharTokenizer.from_text("ab")
    with pytest.raises(TokenizerError, match=r"id 2 at position 1 is outside the tokenizer's "
                                             r"2 ids \[0, 2\)"):
        tok.decode([0, 2])
    with pytest.raises(TokenizerError, match="decode takes integer ids, not float64"):
        tok.decode(np.array([0.0, 1.0]))
    with pytest.raises(TokenizerError, match="encode takes a str, not bytes"):
        tok.encode(b"ab")
    with pytest.raises(TokenizerError, match="from_text takes a non-empty str, not an empty"):
        CharTokenizer.from_text("")
    with pytest.raises(TokenizerError, match=r"must be distinct; 'a' appear"):
        CharTokenizer("aba")


def test_tokenizer_config_is_json_and_restores_it():
    tok = CharTokenizer.from_text("To be, or not to be\n")
    config = json.loads(json.dumps(tok.to_config()))
    back = CharTokenizer.from_config(config)
    assert back == tok and back.encode("be").tolist() == tok.encode("be").tolist()
    with pytest.raises(TokenizerError, match="not a CharTokenizer's configuration"):
        CharTokenizer.from_config({"type": "BPE"})


def test_tiny_shakespeare_is_split_as_nanogpt_splits_it():
    data = xb.data.load_tiny_shakespeare()
    assert len(data.text) == 1_115_394 and data.tokenizer.vocab_size == 65
    assert len(data.train) == 1_003_854 and len(data.val) == 111_540  # nanoGPT's counts
    assert data.tokenizer.decode(data.train[:14]) == "First Citizen:"
    assert data.train.dtype == data.val.dtype == np.int32
    assert data.tokenizer.decode(data.val[-20:]) == data.text[-20:]


def test_load_text_reads_gzip_and_names_bad_bytes(tmp_path):
    (tmp_path / "a.txt").write_bytes("héllo\r\n".encode())
    (tmp_path / "a.txt.gz").write_bytes(gzip.compress("héllo\r\n".encode()))
    assert xb.data.load_text(tmp_path / "a.txt") == "héllo\r\n"
    assert xb.data.load_text(tmp_path / "a.txt.gz") == "héllo\r\n"
    (tmp_path / "latin.txt").write_bytes("héllo".encode("latin-1"))
    with pytest.raises(DataFileError, match=r"latin.txt is not utf-8 text: byte 1 is "
                                            r"b'\\xe9'.*encoding=\.\.\."):
        xb.data.load_text(tmp_path / "latin.txt")
    assert xb.data.load_text(tmp_path / "latin.txt", encoding="latin-1") == "héllo"
    (tmp_path / "cut.gz").write_bytes(gzip.compress(b"x" * 1000)[:20])
    with pytest.raises(DataFileError, match="damaged or truncated gzip"):
        xb.data.load_text(tmp_path / "cut.gz")
    with pytest.raises(DataFileError, match="cannot read .*missing.txt"):
        xb.data.load_text(tmp_path / "missing.txt")


def test_split_text_and_its_limits():
    data = xb.data.split_text("abcdefghij" * 10, val_fraction=0.2)
    assert len(data.train) == 80 and len(data.val) == 20
    with pytest.raises(ValueError, match="too short to split"):
        xb.data.split_text("abc")
    with pytest.raises(ValueError, match=r"val_fraction is in \(0, 1\)"):
        xb.data.split_text("abcdef" * 10, val_fraction=1.0)


def test_token_windows_are_next_token_pairs_keyed_by_the_step():
    tokens = np.arange(1000, dtype=np.int64) % 97
    source = TokenWindows(tokens, context=8, batch_size=5, seed=3)
    x, y = source(7)
    assert x.shape == y.shape == (5, 8) and x.dtype == y.dtype == np.int32
    starts = source.starts(7)
    for row, s in enumerate(starts):
        np.testing.assert_array_equal(x[row], tokens[s:s + 8])
        np.testing.assert_array_equal(y[row], tokens[s + 1:s + 9])
    # pure in the step: the same batch whenever asked, another for another step or seed
    np.testing.assert_array_equal(source(7)[0], x)
    assert not np.array_equal(source(8)[0], x)
    assert not np.array_equal(TokenWindows(tokens, 8, 5, seed=4)(7)[0], x)
    # every window fits: the last start leaves room for the next token
    many = np.concatenate([source.starts(s) for s in range(200)])
    assert many.min() >= 0 and many.max() <= len(tokens) - 8 - 1


@pytest.mark.parametrize("args, match", [
    ((np.zeros((2, 5), np.int32), 2, 1), r"1-d array of integer ids, not int32 of shape \(2, 5\)"),
    ((np.zeros(5), 2, 1), "1-d array of integer ids, not float64"),
    ((np.zeros(5, np.int32), 5, 1), "5 tokens hold no window of context 5"),
    ((np.zeros(5, np.int32), 0, 1), "context is an int >= 1, not 0"),
    ((np.zeros(5, np.int32), 2, 1.5), "batch_size is an int >= 1, not 1.5"),
])
def test_token_windows_bad_settings(args, match):
    with pytest.raises(ValueError, match=match):
        TokenWindows(*args)
