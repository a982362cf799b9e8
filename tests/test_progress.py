"""The progress bar: a final line per epoch when output is a file or a pipe, redrawn in
place on a terminal."""

from __future__ import annotations

import io

from xbackprop.progress import ProgressBar, format_metrics


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_format_metrics():
    assert format_metrics({"loss": 0.123456, "accuracy": 1.0, "epoch": 3}) == \
        "loss 0.1235  accuracy 1.0000  epoch 3"
    assert format_metrics({}) == ""


def test_plain_file_gets_one_final_line():
    f = io.StringIO()
    bar = ProgressBar(4, "epoch 1/2", file=f)
    assert not bar.needs_refresh()
    for _ in range(4):
        bar.update(loss=1.0)
    assert f.getvalue() == ""  # nothing until the end
    bar.close(loss=0.5, val_loss=0.25)
    line = f.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    assert line.startswith("epoch 1/2 " + "█" * 24 + " 4/4  loss 0.5000  val_loss 0.2500  [")
    assert "it/s]" in line


def test_half_done_bar():
    f = io.StringIO()
    bar = ProgressBar(4, "e", file=f, width=10)
    bar.update(2)
    bar.close()
    assert "█" * 5 + "·" * 5 + " 2/4" in f.getvalue()


def test_terminal_redraws_in_place():
    f = Terminal()
    bar = ProgressBar(3, "epoch 1/1", file=f, min_interval=0.0)
    assert bar.interactive and bar.needs_refresh()
    bar.update(loss=2.0)
    bar.update(loss=1.0)
    bar.close(loss=1.0)
    out = f.getvalue()
    assert out.count("\r\033[K") == 3  # two redraws and the final line
    assert "ETA" in out and out.endswith("\n") and out.count("\n") == 1


def test_disabled_bar_is_silent():
    f = Terminal()
    bar = ProgressBar(3, "x", file=f, enabled=False)
    bar.update(loss=1.0)
    bar.close(loss=1.0)
    assert f.getvalue() == "" and not bar.needs_refresh()
