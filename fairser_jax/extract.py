r"""Pooled encoder features of a corpus, written as a feature store.

    python -m fairser_jax.extract --corpus=DIR --checkpoint=random-tiny \
        --out=/tmp/features.npz

    python -m fairser_jax.extract --wav_list=files.txt \
        --checkpoint=facebook/wav2vec2-base --out=/tmp/features.npz

``--checkpoint`` is ``random-base`` / ``random-tiny`` (seeded random
weights, no files needed), a local Hugging Face checkpoint directory, or a
hub name already in the local HF cache, of any family its ``config.json``
names: wav2vec2, HuBERT, WavLM or data2vec-audio. The store holds ``ids`` (str),
``features`` (float32 [N, H], mean over valid frames of ``--layer``) and a
manifest; an existing store is reused when its manifest matches.

``--wav_list`` is a text file with one sound file per line (blank lines and
lines starting with ``#`` are skipped; relative paths are relative to the
list file); ids are the file stems.
"""

import pathlib

from absl import app, flags

from fairser_jax import cli
from fairser_jax.wav2vec2 import extraction

_CORPUS = flags.DEFINE_string("corpus", None, "Corpus root in IEMOCAP layout.")
_WAV_LIST = flags.DEFINE_string(
    "wav_list", None, "Text file listing sound files (alternative to --corpus)."
)
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint",
    None,
    "random-base | random-tiny (seeded random weights) | HF checkpoint "
    "directory | hub name in the local HF cache; wav2vec2, HuBERT, WavLM "
    "or data2vec-audio. Required: random weights are never picked "
    "silently.",
)
_OUT = flags.DEFINE_string("out", None, "Output feature store (.npz).")
_LAYER = flags.DEFINE_integer(
    "layer", -1, "-1 = last hidden state; else index into hidden states."
)
_BATCH_SECONDS = flags.DEFINE_float(
    "batch_seconds",
    extraction.DEFAULT_BATCH_SECONDS,
    "Padded audio per batch, in seconds (batch x padded length).",
)
_SKIP_BAD_AUDIO = flags.DEFINE_bool(
    "skip_bad_audio",
    False,
    "Skip (and report) unreadable, empty, too short or non-finite audio "
    "instead of stopping at the first such file.",
)
_ALLOW_PICKLE = flags.DEFINE_bool(
    "allow_pickle",
    False,
    "Allow loading a pytorch_model.bin checkpoint (a pickle: trusted files "
    "only).",
)


def read_wav_list(path: str | pathlib.Path) -> list[pathlib.Path]:
    """Sound files listed in ``path``, relative entries resolved against it.

    Raises:
        ValueError: the list file is missing.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"--wav_list={path}: no such file")
    files = []
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        file = pathlib.Path(entry)
        files.append(file if file.is_absolute() else path.parent / file)
    return files


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if (_CORPUS.value is None) == (_WAV_LIST.value is None):
        raise app.UsageError("pass exactly one of --corpus and --wav_list")
    if _OUT.value is None or _CHECKPOINT.value is None:
        raise app.UsageError("--out and --checkpoint are required")
    cli.configure_logging()
    cli.enable_compilation_cache()

    def run():
        source = (
            _CORPUS.value
            if _CORPUS.value is not None
            else read_wav_list(_WAV_LIST.value)
        )
        return extraction.extract_corpus(
            source,
            _CHECKPOINT.value,
            _OUT.value,
            layer=_LAYER.value,
            batch_seconds=_BATCH_SECONDS.value,
            skip_bad_audio=_SKIP_BAD_AUDIO.value,
            allow_pickle=_ALLOW_PICKLE.value,
        )

    features = cli.run_or_exit("fairser_jax.extract", run)
    skipped = features.manifest.get("skipped", [])
    print(
        f"{_OUT.value}: {features.features.shape[0]} utterances x "
        f"{features.features.shape[1]} dims"
        + (f", {len(skipped)} skipped:" if skipped else "")
    )
    for item in skipped:
        print(f"  skipped {item['id']}: {item['message']}")


if __name__ == "__main__":
    cli.run_entry("fairser_jax.extract", main)
