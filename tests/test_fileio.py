"""`fileio.atomic_write`: the one way files are written whole."""

import os
import pathlib
import stat

import numpy as np
import pytest

from fairser_jax import fileio

FAIRSER = pathlib.Path(__file__).resolve().parents[1] / "fairser_jax"


def _mode(path: pathlib.Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_mode_follows_the_umask_as_open_does(tmp_path, umask):
    old = os.umask(umask)
    try:
        fileio.atomic_write_text(tmp_path / "a.txt", "x")
        with open(tmp_path / "b.txt", "w") as f:  # the reference
            f.write("x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a.txt") == _mode(tmp_path / "b.txt")
    assert _mode(tmp_path / "a.txt") == 0o666 & ~umask


def test_writes_text_and_binary_and_leaves_no_temp(tmp_path):
    fileio.atomic_write_text(tmp_path / "t.txt", "ä\nb\n")
    assert (tmp_path / "t.txt").read_bytes() == "ä\nb\n".encode()
    with fileio.atomic_write(tmp_path / "a.npz", "wb") as f:
        np.savez(f, x=np.arange(3))
    with np.load(tmp_path / "a.npz") as f:
        np.testing.assert_array_equal(f["x"], np.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "t.txt"]


def test_an_error_keeps_the_old_file_and_removes_the_temp(tmp_path):
    target = tmp_path / "results.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with fileio.atomic_write(target) as f:
            f.write("half of the new")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_the_target_appears_only_when_the_block_ends(tmp_path):
    target = tmp_path / "predictions.csv"
    with fileio.atomic_write(target) as f:
        f.write("a,b\n")
        assert not target.exists()
    assert target.read_text() == "a,b\n"


def test_no_module_renames_a_temp_file_of_its_own():
    """Every whole-file write goes through fileio: no module but fileio
    calls os.replace / Path.replace on a temporary file, except the
    manifest writer, which renames its three CSVs together."""
    offenders = []
    for path in FAIRSER.rglob("*.py"):
        if path.name == "fileio.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if "tmp.replace(" in line or "os.replace(tmp" in line:
                offenders.append(f"{path.relative_to(FAIRSER)}:{n}")
    assert offenders, "the scan found not even the manifest writer"
    assert all(o.startswith("data/manifest.py:") for o in offenders), offenders


def test_workdir_paths_are_spelled_in_workdir_py_only():
    """`workdir.Layout` names every file and folder of a workdir: no other
    module joins a workdir path from a literal name."""
    import re

    literal = re.compile(
        r'/ *"(config\.json|results\.json|predictions\.csv|report\.md|'
        r"claims\.md|alpha_trace\.npz|features\.npz|detector\.json|"
        r"normalization\.npz|params|predictions|training|checkpoints|"
        r'embeddings|figures|tables|corpus)"'
    )
    offenders = [
        f"{path.relative_to(FAIRSER)}:{n}"
        for path in FAIRSER.rglob("*.py")
        # A Hugging Face checkpoint folder's config.json is not a workdir's.
        if path.name != "workdir.py" and path.parent.name != "wav2vec2"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if literal.search(line)
    ]
    assert offenders == [], offenders


def test_layout_has_a_path_for_every_name():
    from fairser_jax import workdir

    layout = workdir.Layout("w")
    names = {
        k: v
        for k, v in vars(workdir.Layout).items()
        if k.isupper() and isinstance(v, str)
    }
    assert "RESULTS" in names and "TRAINING" in names
    for key, name in names.items():
        assert getattr(layout, key.lower()) == layout.root / name, key
    assert layout.predictions_file("dnn").parent == layout.predictions_dir
    assert set(workdir.RUN_OUTPUTS) <= set(names.values())
