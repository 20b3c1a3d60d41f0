"""Tests of the feature store, alignment and speaker-wise z-norm."""

import json
import os
import pathlib
import shutil
import zipfile

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler
from test_iemocap import make_corpus

from fairser_jax.data import features, iemocap

MANIFEST = {
    "checkpoint": "random-base",
    "layer": -1,
    "pooling": "mean",
    "corpus_fingerprint": "abc123",
    "skipped": [],
}


@pytest.fixture
def store(tmp_path, rng):
    ids = [f"Ses0{k % 5 + 1}F_x_M{k:03d}" for k in range(7)]
    feats = rng.normal(size=(7, 16)).astype(np.float32)
    path = tmp_path / "features.npz"
    features.save(path, ids, feats, MANIFEST)
    return path, ids, feats


def test_round_trip(store):
    path, ids, feats = store
    loaded = features.load(path, expected=MANIFEST)
    assert loaded.ids == tuple(ids)
    np.testing.assert_array_equal(loaded.features, feats)
    assert loaded.features.dtype == np.float32
    assert loaded.feature_dim == 16
    assert loaded.manifest == {
        **MANIFEST,
        "num_utterances": 7,
        "feature_dim": 16,
    }
    # Plain NumPy reads it without pickle.
    with np.load(path, allow_pickle=False) as npz:
        assert npz["ids"].dtype.kind == "U"
        np.testing.assert_array_equal(npz["features"], feats)
        assert json.loads(str(npz["manifest"])) == loaded.manifest
    # The human-readable sidecar holds the same manifest.
    sidecar = path.with_name("features.npz.json")
    assert json.loads(sidecar.read_text()) == loaded.manifest
    # No temporary file is left behind.
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "features.npz",
        "features.npz.json",
    ]


def test_float64_input_is_stored_as_float32(tmp_path, rng):
    x = rng.normal(size=(3, 4))
    features.save(tmp_path / "f.npz", ["a", "b", "c"], x, {"layer": -1})
    loaded = features.load(tmp_path / "f.npz", expected={"layer": -1})
    np.testing.assert_array_equal(loaded.features, x.astype(np.float32))


def test_stale_manifest_names_fields_and_fix(store):
    path, _, _ = store
    expected = dict(MANIFEST, layer=6, corpus_fingerprint="def456")
    with pytest.raises(features.StaleFeaturesError) as err:
        features.load(path, expected=expected)
    message = str(err.value)
    assert "layer: file has -1, expected 6" in message
    assert "corpus_fingerprint: file has 'abc123', expected 'def456'" in message
    assert "checkpoint" not in message
    assert "fairser_jax.extract" in message and "delete" in message
    with pytest.raises(features.StaleFeaturesError, match="'<absent>'"):
        features.load(path, expected={"sample_rate": 16000})


def test_wrong_width_is_rejected(store):
    path, _, _ = store
    with pytest.raises(
        features.StaleFeaturesError, match="feature_dim: file has 16"
    ):
        features.load(path, expected={"feature_dim": 768})


def test_corrupted_files(store, tmp_path):
    path, _, _ = store
    # Truncated.
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(features.FeatureStoreError, match=r"or corrupted \("):
        features.load(truncated)
    # One flipped byte inside the stored features (zip CRC-32 catches it).
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("features.npy")
    offset = info.header_offset + 30 + len(info.filename) + 200
    raw[offset] ^= 0xFF
    flipped = tmp_path / "flipped.npz"
    flipped.write_bytes(bytes(raw))
    with pytest.raises(features.FeatureStoreError, match="CRC"):
        features.load(flipped)
    # Not a zip at all.
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(features.FeatureStoreError) as err:
        features.load(text)
    assert "is not a feature store" in str(err.value)
    with pytest.raises(FileNotFoundError, match="fairser_jax.extract"):
        features.load(tmp_path / "absent.npz")


def _write_raw(path, **arrays):
    base = {
        "ids": np.array(["a", "b"]),
        "features": np.zeros((2, 3), np.float32),
        "manifest": np.array(
            json.dumps({"num_utterances": 2, "feature_dim": 3})
        ),
        "format": np.array(features.FORMAT_VERSION),
    }
    base.update(arrays)
    np.savez(path, **{k: v for k, v in base.items() if v is not None})
    return path


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"manifest": None}, "no manifest array"),
        ({"features": np.zeros((2, 3), np.float64)}, "must be float32"),
        ({"features": np.zeros(2, np.float32)}, "shape"),
        ({"features": np.zeros((3, 3), np.float32)}, "shape"),
        ({"ids": np.array([1, 2])}, "1-D str array"),
        ({"ids": np.array(["a", "a"])}, "duplicate id"),
        (
            {"features": np.array([[0, np.nan, 0], [0, 0, 0]], np.float32)},
            "non-finite features for 1 utterance",
        ),
        ({"manifest": np.array("{")}, "not JSON"),
        ({"manifest": np.array("[1]")}, "not a JSON object"),
        (
            {"manifest": np.array('{"num_utterances": 2, "feature_dim": 4}')},
            "feature_dim=4 but the data has 3",
        ),
        ({"format": np.array(99)}, "layout version 99"),
    ],
)
def test_bad_layouts(tmp_path, arrays, message):
    path = _write_raw(tmp_path / "bad.npz", **arrays)
    with pytest.raises(features.FeatureStoreError, match=message) as err:
        features.load(path)
    assert str(path) in str(err.value)


def test_object_arrays_are_never_unpickled(tmp_path):
    path = _write_raw(
        tmp_path / "pickled.npz", ids=np.array(["a", None], dtype=object)
    )
    with pytest.raises(features.FeatureStoreError, match="Python objects"):
        features.load(path)


@pytest.mark.parametrize(
    "ids, feats, manifest, message",
    [
        (["a", "a"], np.zeros((2, 3)), {}, "duplicate id"),
        (["a", "b"], np.zeros((3, 3)), {}, "N = len"),
        (["a"], np.zeros(3), {}, "N = len"),
        (["a"], np.array([[np.inf, 0.0]]), {}, "non-finite"),
        (["a"], np.zeros((1, 2), np.int32), {}, "floating point"),
        (["a"], np.zeros((1, 2)), {"x": object()}, "JSON-serialisable"),
        (["a"], np.zeros((1, 2)), {"feature_dim": 5}, "feature_dim=5"),
    ],
)
def test_save_rejects_bad_input(tmp_path, ids, feats, manifest, message):
    with pytest.raises(features.FeatureStoreError, match=message):
        features.save(tmp_path / "f.npz", ids, feats, manifest)
    assert not (tmp_path / "f.npz").exists()


def test_align(store):
    path, ids, feats = store
    loaded = features.load(path)
    order = [ids[3], ids[0], ids[6]]
    np.testing.assert_array_equal(
        features.align(loaded, order), feats[[3, 0, 6]]
    )
    absent = [f"Ses09F_none_F{k:03d}" for k in range(8)]
    with pytest.raises(features.MissingFeaturesError) as err:
        features.align(loaded, [ids[0], *absent])
    message = str(err.value)
    assert "8 of 9 utterance(s)" in message
    assert ", ".join(absent[:5]) in message
    assert absent[5] not in message
    assert "fairser_jax.extract" in message


def test_speaker_znorm_matches_reference(rng):
    x = rng.normal(3.0, 2.0, size=(40, 5)) * rng.uniform(0.5, 4.0, 5)
    speakers = np.array([f"Ses0{k % 5 + 1}{'FM'[k % 2]}" for k in range(40)])
    x[speakers == "Ses01F", 2] = 7.0  # constant within one speaker
    got = features.speaker_znorm(x, speakers)
    assert got.dtype == np.float32
    for s in np.unique(speakers):
        m = speakers == s
        want = StandardScaler().fit_transform(x[m])
        np.testing.assert_allclose(got[m], want, atol=1e-5)
        # A plain loop, feature by feature.
        for j in range(x.shape[1]):
            mu, sd = x[m, j].mean(), x[m, j].std()
            ref = (x[m, j] - mu) / (sd if sd > 1e-8 else 1.0)
            np.testing.assert_allclose(got[m, j], ref, atol=1e-5)
    assert np.all(got[speakers == "Ses01F", 2] == 0.0)
    with pytest.raises(ValueError, match="speakers"):
        features.speaker_znorm(x, speakers[:-1])


def test_corpus_fingerprint(tmp_path):
    root = make_corpus(tmp_path / "a")
    for wav in root.glob("Session*/sentences/wav/*/*.wav"):
        wav.write_bytes(b"RIFF" + wav.name.encode() * 50)
    utts = iemocap.read_corpus(root)
    fp = features.corpus_fingerprint(utts)
    assert len(fp) == 64 and int(fp, 16) >= 0
    assert features.corpus_fingerprint(list(reversed(utts))) == fp
    # A copy elsewhere has the same fingerprint.
    copy = pathlib.Path(shutil.copytree(root, tmp_path / "b"))
    assert features.corpus_fingerprint(iemocap.read_corpus(copy)) == fp
    # Relabelling does not matter; audio does.
    emo = copy / "Session1" / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt"
    emo.write_text(emo.read_text().replace("\tneu\t", "\tsad\t"))
    assert features.corpus_fingerprint(iemocap.read_corpus(copy)) == fp
    wav = next(copy.glob("Session1/sentences/wav/*/*F000.wav"))
    data = bytearray(wav.read_bytes())
    data[-1] ^= 1  # same size, one bit
    wav.write_bytes(bytes(data))
    changed = features.corpus_fingerprint(iemocap.read_corpus(copy))
    assert changed != fp
    wav.unlink()
    removed = features.corpus_fingerprint(iemocap.read_corpus(copy))
    assert removed not in (fp, changed)


def test_a_manifest_folder_copied_anywhere_keeps_its_fingerprint(tmp_path):
    """A self-contained manifest folder (wavs beside utterances.csv) copied
    elsewhere used to make its store "stale": the fingerprint took the
    last 5 parts of each wav's path. It is the audio's content now."""
    from fairser_jax.data import manifest

    root = make_corpus(tmp_path / "iemocap")
    for wav in root.glob("Session*/sentences/wav/*/*.wav"):
        wav.write_bytes(b"RIFF" + wav.name.encode() * 50)
    folder = tmp_path / "projects" / "mine" / "manifest"
    manifest.write(
        iemocap.to_corpus(iemocap.read_corpus(root), None, root), folder
    )
    as_extraction_reads = dict(
        classes=None, speaker_attribute=None, rater_attribute=None, num_folds=1
    )
    # Self-contained: the wavs move into the folder, paths made relative.
    table = (folder / "utterances.csv").read_text()
    (folder / "audio").mkdir()
    for u in manifest.read(folder, **as_extraction_reads).records:
        target = folder / "audio" / u.wav_path.name
        shutil.copy(u.wav_path, target)
        table = table.replace(str(u.wav_path), f"audio/{u.wav_path.name}")
    (folder / "utterances.csv").write_text(table)
    fp = features.corpus_fingerprint(
        manifest.read(folder, **as_extraction_reads).records
    )
    moved = pathlib.Path(shutil.copytree(folder, tmp_path / "elsewhere" / "m"))
    records = manifest.read(moved, **as_extraction_reads).records
    assert records and all(moved in u.wav_path.parents for u in records)
    assert (
        features.corpus_fingerprint(
            manifest.read(moved, **as_extraction_reads).records
        )
        == fp
    )
    # Renaming a wav (its id kept) changes no feature, nor the fingerprint.
    first = sorted((moved / "audio").iterdir())[0]
    first.rename(first.with_name("renamed.wav"))
    text = (moved / "utterances.csv").read_text()
    assert f"audio/{first.name}" in text
    (moved / "utterances.csv").write_text(
        text.replace(f"audio/{first.name}", "audio/renamed.wav")
    )
    assert (
        features.corpus_fingerprint(
            manifest.read(moved, **as_extraction_reads).records
        )
        == fp
    )


# --- Files that are not feature stores at all -----------------------------
HOW_TO_MAKE = "python -m fairser_jax.extract --corpus="


def _assert_not_a_store(path: pathlib.Path, what: str | None = None) -> None:
    with pytest.raises(ValueError) as err:
        features.load(path)
    message = str(err.value)
    assert isinstance(err.value, features.FeatureStoreError)
    assert f"{path} is not a feature store" in message
    assert HOW_TO_MAKE in message
    assert "--checkpoint=" in message and "--out=" in message
    assert "pickle" not in message.lower()
    assert "\n" not in message
    if what is not None:
        assert what in message


def test_random_bytes_are_not_a_feature_store(tmp_path, rng):
    path = tmp_path / "random.npz"
    data = rng.integers(0, 256, size=4096, dtype=np.uint8).tobytes()
    assert not data.startswith((b"PK", b"\x93NUMPY"))
    path.write_bytes(data)
    _assert_not_a_store(path, "not a zip archive")
    path.write_bytes(b"")
    _assert_not_a_store(path, "empty")


def test_zip_without_our_keys_is_not_a_feature_store(tmp_path):
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3), y=np.ones((2, 2)))
    _assert_not_a_store(other, "no features, format, ids, manifest")
    plain = tmp_path / "plain.npz"
    with zipfile.ZipFile(plain, "w") as z:
        z.writestr("readme.txt", "hello")
    _assert_not_a_store(plain, "no features, format, ids, manifest")


def test_single_npy_is_not_a_feature_store(tmp_path):
    path = tmp_path / "array.npz"
    with path.open("wb") as f:
        np.save(f, np.zeros((2, 3), np.float32))
    _assert_not_a_store(path, ".npy")


@pytest.mark.parametrize(
    "arrays, what",
    [
        ({"ids": np.array(["a", None], dtype=object)}, "object"),
        ({"features": np.array([[0, 1, 2], [0, 1, None]], object)}, "object"),
        ({"manifest": np.array({"a": 1}, dtype=object)}, "object"),
        ({"features": np.zeros((2, 3), np.float64)}, "must be float32"),
        ({"ids": np.array([1, 2])}, "1-D str array"),
        ({"format": np.array("one")}, "format"),
        ({"format": np.array([1, 1])}, "format"),
        ({"manifest": np.array(5)}, "manifest"),
    ],
)
def test_wrong_dtypes_are_not_a_feature_store(tmp_path, arrays, what):
    _assert_not_a_store(_write_raw(tmp_path / "bad.npz", **arrays), what)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_store_gets_the_mode_of_a_plain_open(tmp_path, umask, mode):
    """0666 less the umask, as open() would give: collaborators read a
    store made under umask 022, and a private umask stays private."""
    old = os.umask(umask)
    try:
        features.save(tmp_path / "f.npz", ["a"], np.ones((1, 2)), {})
    finally:
        os.umask(old)
    assert (tmp_path / "f.npz").stat().st_mode & 0o777 == mode
    # No temporary file is left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "f.npz",
        "f.npz.json",
    ]
