"""CSV tables: numbers become features, text is one-hot encoded (and reported), a text target
becomes class labels, standardisation uses the training split only, and every way a table
can be wrong is an error naming the line and column. The shipped UCI tables are the
published files. The Standardizer works on every backend."""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources

import numpy as np
import pytest

import xbackprop as xb
from tests.data.conftest import SHARED_DATA
from xbackprop.data import DataFileError, Standardizer, load_csv

PETS = """\
weight,colour,legs,age
4.0,black,4,2
3.5,white,4,9
30.0,black,4,5
0.1,green,2,1
7.0,white,4,12
2.5,black,2,3
12.0,green,4,7
8.0,white,4,4
6.0,black,4,8
1.5,green,2,6
"""


@pytest.fixture
def pets(tmp_path):
    path = tmp_path / "pets.csv"
    path.write_text(PETS)
    return path


def _write(tmp_path, text: str, name: str = "t.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_numbers_and_one_hot_text(pets):
    table = load_csv(pets, "age", test_fraction=0.3, seed=1)
    assert table.features == ("weight", "colour=black", "colour=green", "colour=white", "legs")
    assert table.categories == {"colour": ("black", "green", "white")}
    assert table.x_train.shape == (7, 5) and table.x_test.shape == (3, 5)
    assert table.y_train.shape == (7, 1) and table.y_train.dtype == np.float32
    x = np.concatenate([table.x_train, table.x_test]).astype(np.float64).round(3)
    rows = {r[0]: r for r in x}
    np.testing.assert_array_equal(rows[30.0], [30.0, 1, 0, 0, 4])
    np.testing.assert_array_equal(rows[0.1], [0.1, 0, 1, 0, 2])
    # each row's target travelled with it through the shuffle
    pairs = dict(zip(x[:, 0].tolist(), np.concatenate([table.y_train, table.y_test])[:, 0]))
    assert pairs[30.0] == 5 and pairs[7.0] == 12 and pairs[0.1] == 1
    report = str(table)
    assert "pets.csv: 10 rows x 4 columns; target age (regression)" in report
    assert "one-hot: colour (3 values: black, green, white) -> 3 columns" in report
    assert "split: 7 train / 3 test (seed 1)" in report


def test_standardisation_is_fitted_on_the_training_split_only(pets):
    table = load_csv(pets, "age", standardize=True, standardize_target=True, dtype="float64")
    assert table.x_scaler is not None and table.y_scaler is not None
    weight, legs = table.features.index("weight"), table.features.index("legs")
    np.testing.assert_allclose(table.x_train[:, [weight, legs]].mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(table.x_train[:, [weight, legs]].std(0), 1, atol=1e-12)
    assert abs(table.x_test[:, weight].mean()) > 1e-3  # the test rows did not take part
    onehot = [i for i, f in enumerate(table.features) if f.startswith("colour=")]
    assert set(np.unique(table.x_train[:, onehot])) == {0.0, 1.0}  # left as 0/1
    np.testing.assert_allclose(table.y_train.mean(), 0, atol=1e-12)
    raw = load_csv(pets, "age", dtype="float64")
    np.testing.assert_allclose(table.y_scaler.inverse_transform(table.y_test), raw.y_test)
    np.testing.assert_allclose(table.x_scaler.inverse_transform(table.x_test), raw.x_test)
    assert "features and targets standardised with the train split's" in str(table)


def test_several_targets_and_chosen_features(pets):
    table = load_csv(pets, ["age", "weight"], features=["legs"], seed=0)
    assert table.features == ("legs",) and table.targets == ("age", "weight")
    assert table.y_train.shape == (8, 2) and table.x_train.shape == (8, 1)


def test_a_text_target_becomes_stratified_class_labels(pets):
    table = load_csv(pets, "colour", test_fraction=0.3)
    assert table.classification and table.y_train.dtype == np.int64
    assert table.categories["colour"] == ("black", "green", "white")
    assert sorted(np.concatenate([table.y_train, table.y_test]).tolist()) == [0] * 4 + [1] * 3 \
        + [2] * 3
    assert set(table.y_test.tolist()) == {0, 1, 2}  # every class held out
    assert "target colour (classification, 3 classes)" in str(table)
    with pytest.raises(ValueError, match="'colour' is text .*cannot be standardised"):
        load_csv(pets, "colour", standardize_target=True)
    with pytest.raises(ValueError, match="a text target must be the only target"):
        load_csv(pets, ["colour", "age"])


def test_categorical_columns_by_name_and_gzip_and_semicolons(tmp_path):
    text = PETS.replace(",", ";")
    path = tmp_path / "pets.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    table = load_csv(path, "age", categorical=["legs", "colour"])
    assert "legs=2" in table.features and "legs=4" in table.features
    assert table.categories["legs"] == ("2", "4")


def test_shipped_tables_are_the_published_files():
    """The package's gzipped copies hold exactly the UCI files (checksums as recorded in
    xbackprop/data/README.md and ../shared/data/README.md)."""
    folder = resources.files("xbackprop.data")
    readme = folder.joinpath("README.md").read_text()
    for name, sha in [("forestfires.csv", "0d6586a1fa52f55bef48578aef14eb97273f1e9330e1a53423df497"
                                          "a77065253"),
                      ("energy_efficiency.csv", "de39cd8db85af3aeebfda4997c83bb3171fc2e0414c0628c4"
                                                "1c66f00c7ba316e")]:
        raw = gzip.decompress(folder.joinpath(name + ".gz").read_bytes())
        assert hashlib.sha256(raw).hexdigest() == sha
        assert sha in readme
        if (SHARED_DATA / name).is_file():
            assert (SHARED_DATA / name).read_bytes() == raw


def test_shipped_tables_load():
    fires = xb.data.load_forest_fires()
    assert fires.features == xb.data.shipped.FOREST_FIRES_FEATURES
    assert len(fires.x_train) + len(fires.x_test) == 517 and fires.y_train.shape[1] == 1
    assert fires.y_train.min() == 0 and fires.y_train.max() > 100  # hectares, skewed
    energy = xb.data.load_energy(standardize=True)
    assert energy.targets == ("heating_load", "cooling_load") and len(energy.features) == 8
    assert len(energy.x_train) + len(energy.x_test) == 768
    both = np.concatenate([energy.y_train, energy.y_test])
    assert 6 < both[:, 0].min() < both[:, 0].max() < 44  # heating load, kWh/m²


# -- every error names what is wrong, where, and what to do ---------------------------------

@pytest.mark.parametrize("text, target, options, message", [
    ("", "a", {}, "the file is empty; a CSV table needs a header row"),
    ("\n  \n", "a", {}, "the file is empty"),
    ("a,b\n", "a", {}, r"a header \(a, b\) but no data rows"),
    ("a,b\n1,2\n3\n", "a", {}, "line 3: 1 values, but the header has 2 columns "
                               r"\(a missing or extra comma\?\)"),
    ("a,b\n1,2\n3,4,5\n", "a", {}, "line 3: 3 values, but the header has 2 columns"),
    ("a;b\n1;2\n3\n", "a", {}, r"\(a missing or extra semicolon\?\)"),
    ("a,b\n1,2\n", "area", {}, "no column 'area' .asked for as a target.; the columns are a, b"),
    ("area,b\n1,2\n", "arae", {}, "Did you mean 'area'"),
    ("a,b\n1,2\n", "a", {"features": ["c"]}, "no column 'c' .asked for as a feature"),
    ("a,b\n1,2\n", "a", {"features": ["a", "b"]}, "a is both a feature and a target"),
    ("a,b\n1,2\n", "a", {"categorical": ["z"]}, "no column 'z' .asked for as a categorical"),
    ("a\n1\n", "a", {}, "no feature columns left besides the target"),
    ("a,b\n1,2\n3,x\n4,5\n", "a", {}, "line 3, column 'b': 'x' is not a number; fix the value, "
                                      r"or list the column in categorical=\[...\]"),
    ("a,b\n1,2\nx,3\n", "a", {}, "line 3, column 'a': 'x' is not a number"),
    ("a,b\n1,2\n\n3,\n", "a", {}, r"line 4, column 'b': empty \(a missing value\); fill it in"),
    ("a,b\n1,red\n2,\n", "a", {}, r"line 3, column 'b': empty \(a missing value\)"),
    ("a,b\n1,2\n3,nan\n", "a", {}, "line 3, column 'b': is 'nan', not a finite number"),
    ("a,b\n1,2\n3,inf\n", "a", {}, "column 'b': is 'inf', not a finite number"),
    ("a,a\n1,2\n", "a", {}, "line 1: two columns are named 'a'"),
    ("a,,c\n1,2,3\n", "a", {}, "line 1: column 2 has no name"),
    ('a,b\n1,"2\n', "a", {}, r"line 2: unexpected end of data \(an unclosed quote\?\)"),
])
def test_table_errors(tmp_path, text, target, options, message):
    path = _write(tmp_path, text)
    with pytest.raises(ValueError, match=message) as info:
        load_csv(path, target, **options)
    assert "t.csv" in str(info.value)


def test_not_text_and_missing_file(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"a,b\n\xff\xfe,1\n")
    with pytest.raises(DataFileError, match="not UTF-8 text"):
        load_csv(path, "a")
    with pytest.raises(FileNotFoundError, match="nope.csv: no such file"):
        load_csv(tmp_path / "nope.csv", "a")


def test_line_numbers_count_blank_lines_and_quoted_newlines(tmp_path):
    path = _write(tmp_path, 'a,b,note\n1,2,"two\nlines"\n\n3,?,x\n')
    with pytest.raises(DataFileError, match="line 5, column 'b': '\\?' is not a number"):
        load_csv(path, "a", features=["b"])


# -- Standardizer ---------------------------------------------------------------------------

def test_standardizer_on_every_backend(backend):
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 3.0, size=(50, 3))
    x[:, 2] = 7.0  # a constant column: scale 1, not a division by zero
    scaler = Standardizer().fit(x)
    np.testing.assert_allclose(scaler.mean, x.mean(0))
    np.testing.assert_allclose(scaler.scale, [x[:, 0].std(), x[:, 1].std(), 1.0])
    on = backend.asarray(x, dtype="float32")
    z = scaler.transform(on)
    assert xb.backend_of(z) is backend and z.dtype == on.dtype
    z_host = xb.to_numpy(z)
    np.testing.assert_allclose(z_host.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z_host[:, :2].std(0), 1, atol=1e-5)
    np.testing.assert_allclose(xb.to_numpy(scaler.inverse_transform(z)), x, rtol=1e-5)


def test_standardizer_columns_and_errors():
    x = np.array([[0.0, 10.0], [2.0, 30.0]])
    scaler = Standardizer().fit(x, columns=[1])
    np.testing.assert_allclose(scaler.transform(x), [[0.0, -1.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="not fitted yet: call fit"):
        Standardizer().transform(x)
    with pytest.raises(ValueError, match=r"fitted on rows of shape \(2,\), got rows of shape "
                                         r"\(3,\)"):
        scaler.transform(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="no rows"):
        Standardizer().fit(np.zeros((0, 2)))
