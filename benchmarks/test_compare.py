"""`python -m benchmarks.compare` end to end on the cheapest workload: the table, the ratio
against the peer, the JSON where the user says and nowhere else."""

from __future__ import annotations

import json

import pytest

from benchmarks import compare

FAST = ["--workloads", "xor", "--repeat", "1", "--min-time", "0.001"]


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch):
    monkeypatch.setattr(compare, "IDLE_SECONDS", 0.0)


def test_prints_the_table_and_writes_the_json_only_where_asked(tmp_path, monkeypatch, capsys):
    work, out = tmp_path / "cwd", tmp_path / "out" / "bench.json"
    work.mkdir()
    out.parent.mkdir()
    monkeypatch.chdir(work)
    assert compare.main(FAST + ["--impls", "xbackprop-numpy", "numpy-plain",
                                "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| xor | xbackprop-numpy | cpu |" in text and "| xor | numpy-plain | cpu |" in text
    assert "| xor | xbackprop-numpy | numpy-plain |" in text  # the ratio row
    report = json.loads(out.read_text())
    assert set(report) == {"machine", "load", "rounds", "clock", "results", "ratios", "gemm",
                           "memory_mb"}
    assert report["results"]["xor"]["xbackprop-numpy"]["ms"] > 0
    assert [r["peer"] for r in report["ratios"]] == ["numpy-plain"]
    assert list(work.iterdir()) == [] and list(out.parent.iterdir()) == [out]


def test_a_missing_json_folder_fails_before_timing(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        compare.main(FAST + ["--json", str(tmp_path / "nowhere" / "bench.json")])
    assert info.value.code == 2
    err = capsys.readouterr()
    assert "does not exist" in err.err and "timing" not in err.err


def test_an_unavailable_implementation_is_listed_with_its_reason(capsys):
    assert compare.main(FAST + ["--impls", "xbackprop-numpy", "xbackprop-torch-cuda"]) == 0
    text = capsys.readouterr().out
    if "| xor | xbackprop-torch-cuda |" in text:  # a GPU and PyTorch's CUDA build: it ran
        return
    skipped = text.split("Skipped:")[1].splitlines()
    line = next(s for s in skipped if s.startswith("- xor/xbackprop-torch-cuda: "))
    assert "pip install" in line or "no CUDA device" in line, line


def test_rounds_take_each_ratio_within_a_round(capsys):
    assert compare.main(FAST + ["--impls", "xbackprop-numpy", "numpy-plain", "--rounds", "3",
                                "--clock", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "3 round(s), cpu clock" in text and "Load average" in text
    row = next(line for line in text.splitlines()
               if line.startswith("| xor | xbackprop-numpy | numpy-plain |"))
    low, high = (float(v) for v in row.split("|")[5].strip().rstrip("x").split("-"))
    ratio = float(row.split("|")[4].strip().rstrip("x"))
    assert low <= ratio <= high


def test_profile_step_prints_where_a_step_spends_its_time(capsys):
    from benchmarks import profile_step

    assert profile_step.main(["xor", "xbackprop-numpy", "--steps", "2", "--top", "5"]) == 0
    text = capsys.readouterr().out
    assert "xor / xbackprop-numpy: 2 steps" in text and "tottime" in text
