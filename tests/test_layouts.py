"""A corpus layout is one registration: `layouts.register` makes a new
folder layout readable by the pipeline, the extraction and the config
check, without touching any of them."""

import pathlib

import pytest

from fairser_jax import config as config_lib
from fairser_jax import export_manifest, pipeline
from fairser_jax.data import demo_corpus, layouts, manifest
from fairser_jax.wav2vec2 import extraction


def _nested(root: pathlib.Path) -> pathlib.Path:
    return root / "meta"


@pytest.fixture
def nested_layout():
    """A throwaway layout: a manifest kept in the corpus's `meta/`."""
    layout = layouts.register(
        layouts.Layout(
            "nested",
            detect=lambda root: (
                _nested(root) / manifest.UTTERANCES_FILE
            ).is_file(),
            read=lambda root, options: layouts.LAYOUTS["manifest"].read(
                _nested(root), options
            ),
        )
    )
    try:
        yield layout
    finally:
        layouts.unregister("nested")


def test_a_registered_layout_is_read_everywhere(tmp_path, nested_layout):
    source = tmp_path / "demo"
    demo_corpus.generate(source, num_utterances=30, seed=0)
    root = tmp_path / "mine"
    export_manifest.export(source, _nested(root))
    plain = manifest.read(_nested(root))

    assert "nested" in layouts.formats()
    assert layouts.detect_format(root) == "nested"
    cfg = config_lib.get_default_config()
    cfg.data.corpus = str(root)
    for fmt in ("auto", "nested"):
        cfg.data.format = fmt
        config_lib.validate(cfg)
        data = pipeline.read_corpus(cfg, root)
        assert data.format == "nested"
        assert [u.id for u in data.records] == [u.id for u in plain.records]
        assert [u.label for u in data.records] == [
            u.label for u in plain.records
        ]
    ids, wavs, _ = extraction.resolve_source(root)
    assert sorted(ids) == sorted(u.id for u in plain.records)
    assert all(w.is_file() for w in wavs)


def test_unregister_leaves_the_built_in_layouts(nested_layout):
    for name in layouts.BUILT_IN:
        with pytest.raises(ValueError, match="built in"):
            layouts.unregister(name)
    with pytest.raises(ValueError, match="already declared"):
        layouts.register(nested_layout)
