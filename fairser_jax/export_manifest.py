r"""Writes an IEMOCAP-layout corpus as a manifest (three CSV files).

    python -m fairser_jax.export_manifest --corpus=/data/IEMOCAP \
        --rater_gender=rater_gender.json --out=/data/iemocap_manifest

    python -m fairser_jax.export_manifest --corpus=/tmp/demo_corpus \
        --out=/tmp/demo_manifest --overwrite

``--rater_gender`` is the JSON mapping rater id -> M/F (``{"E1": "M",
...}``); by default ``<corpus>/rater_gender.json`` when it exists (the
demo corpus has one). Every rater of the corpus must be in it.

The manifest folder gets ``utterances.csv`` (wav paths, then
``speaker_gender``, the consensus ``label``, leave-one-session-out
``fold``), ``ratings.csv`` (one row per label a rater gave) and
``raters.csv`` (``rater_gender``); utterances without a wav file are left
out. A wav path is relative to the manifest folder when the audio lies
inside it and absolute when it lies outside it, so the folder can be
moved (with the audio inside it, or alone); the files are readable as a
plain ``open()`` would leave them (0666 less the umask).
``--config.data.corpus=OUT`` then trains on it like on the original
(`fairser_jax.data.manifest`). An existing manifest at ``--out`` is only
replaced with ``--overwrite``. Prints a summary as JSON.
"""

from __future__ import annotations

import json
import pathlib

from absl import app, flags

from fairser_jax import cli
from fairser_jax.data import iemocap, layouts, manifest

_PROGRAM = "export_manifest"

_CORPUS = flags.DEFINE_string("corpus", None, "Corpus root in IEMOCAP layout.")
_RATER_GENDER = flags.DEFINE_string(
    "rater_gender",
    None,
    "Rater-gender mapping, a JSON object rater id -> M/F (default: "
    "<corpus>/rater_gender.json when it exists).",
)
_OUT = flags.DEFINE_string(
    "out",
    None,
    "Manifest folder to write. Its wav paths are relative to it for audio "
    "inside it and absolute for audio outside it, so it can be moved.",
)
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "Replace the manifest files already in --out."
)
flags.mark_flags_as_required(["corpus", "out"])


def _rater_id_key(rater: str) -> tuple[int, str]:
    return (len(rater), rater)


def export(
    corpus_root: str | pathlib.Path,
    out: str | pathlib.Path,
    *,
    rater_gender: str | pathlib.Path | None = None,
    overwrite: bool = False,
) -> dict:
    """Reads the IEMOCAP corpus and writes it as a manifest.

    Args:
      corpus_root: corpus root in IEMOCAP layout.
      out: manifest folder.
      rater_gender: the rater-gender JSON file; ``None``:
        ``<corpus_root>/rater_gender.json`` when it exists.
      overwrite: replace the manifest files already in ``out``.

    Returns:
      The summary of `fairser_jax.data.manifest.write`.

    Raises:
      ValueError: the corpus or mapping is not valid, the mapping lacks
        raters of the corpus, or ``out`` holds a manifest already.
      FileNotFoundError: the corpus or mapping does not exist.
    """
    manifest.check_out(out, overwrite=overwrite)  # before a long read
    root = pathlib.Path(corpus_root)
    path = pathlib.Path(rater_gender) if rater_gender else None
    if path is None and (root / "rater_gender.json").is_file():
        path = root / "rater_gender.json"
    corpus = layouts.read(root, format="iemocap", rater_gender=path)
    needed = {r for record in corpus.records for r in record.ratings}
    missing = sorted(needed - set(corpus.rater_attributes), key=_rater_id_key)
    if missing:
        shown = ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else "")
        if path is None:
            hint = iemocap.RATER_GENDER_HINT.replace(
                "--config.data.rater_gender", "--rater_gender"
            )
            raise ValueError(
                f"{root} has no rater_gender.json and --rater_gender was not "
                f"given, but the corpus has raters {shown}; {hint}"
            )
        raise ValueError(
            f"{path} has no gender for rater(s) {shown} of the corpus; add "
            'them to it ({"E1": "M", "E2": "F", ...})'
        )
    return manifest.write(corpus, out, overwrite=overwrite)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    cli.configure_logging()
    summary = cli.run_or_exit(
        _PROGRAM,
        lambda: export(
            _CORPUS.value,
            _OUT.value,
            rater_gender=_RATER_GENDER.value,
            overwrite=_OVERWRITE.value,
        ),
    )
    print(json.dumps(summary, indent=2))
    print(
        f"wrote {summary['num_utterances']} utterances, "
        f"{summary['num_ratings']} ratings and {summary['num_raters']} "
        f"raters to {summary['out']}"
        + (
            f" ({summary['num_left_out']} left out: no wav file)"
            if summary["num_left_out"]
            else ""
        )
    )


if __name__ == "__main__":
    cli.run_entry(_PROGRAM, main)
