"""Every notebook executes top to bottom at the smallest size."""

import os
import pathlib

import jupytext
import nbclient
import nbformat
import pytest

pytestmark = pytest.mark.slow

NOTEBOOKS = sorted(
    (pathlib.Path(__file__).resolve().parents[1] / "notebooks").glob("*.py")
)

# Text each notebook prints once its last cell has run.
EXPECTED_OUTPUT = {
    "lambda_ablation": ("fair_spk", "dnn"),
    "alpha_ablation": (
        "best fixed α",
        "aligned_sinkhorn",
        "ema_zscore",
        "constant",
    ),
}


def test_every_notebook_has_an_expectation():
    assert {p.stem for p in NOTEBOOKS} == set(EXPECTED_OUTPUT)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, monkeypatch):
    small = {
        "FAIRSER_NB_WORKDIR": str(tmp_path / "work"),
        "FAIRSER_NB_UTTERANCES": "80",
        "FAIRSER_NB_CHECKPOINT": "random-tiny",
        "FAIRSER_NB_EPOCHS": "2",
        "FAIRSER_NB_SEEDS": "1",
        "FAIRSER_NB_LAMBDAS": "0,1",
        "FAIRSER_NB_ALPHAS": "0.25,0.75",
        "FAIRSER_NB_ALPHA_FNS": "ema_zscore,constant",
        "FAIRSER_NB_DISTANCES": "aligned_sinkhorn",
        "FAIRSER_NB_PROGRESS": "0",
        "JAX_PLATFORMS": "cpu",
    }
    for key, value in small.items():
        monkeypatch.setenv(key, value)
    notebook = jupytext.read(path)
    # The kernel compiles into the test session's persistent cache, as the
    # entry points do (the notebooks, library users, leave JAX's config
    # alone): programs it compiles twice, or that other tests compiled,
    # load instead.
    notebook.cells.insert(
        0,
        nbformat.v4.new_code_cell(
            "from fairser_jax import cli\ncli.enable_compilation_cache()"
        ),
    )
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    outputs = [
        out
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    ]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    for expected in EXPECTED_OUTPUT[path.stem]:
        assert expected in text, expected
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, "the notebook drew no figure"
    assert os.path.isdir(tmp_path / "work" / "corpus")
