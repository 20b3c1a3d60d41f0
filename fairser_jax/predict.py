r"""Run a trained workdir's fair emotion detectors on new recordings.

    python -m fairser_jax.predict --workdir=/tmp/fairser_demo \
        --audio=/tmp/fairser_demo/corpus/Session1 \
        --speaker_of=/tmp/fairser_demo/corpus/speakers.csv \
        [--variant=proposed] [--out=preds.csv]

``--audio`` is a sound file (wav, flac, ...), a folder (searched
recursively) or a text file listing sound files (one per line, relative to
the list; ``#`` comments). For every recording and every emotion detector
of the variant (default: the best two-sided variant the workdir has, else
Fair_spk, else DNN, else Fair_rat), the CSV holds the probability averaged
over the workdir's fold × seed models, its SD across them and the yes/no
decision (probability >= 0.5)::

    path,variant,emotion,probability,sd,decision

Speaker-wise z-normalisation (as in training, paper §2.2.1) needs several
recordings per speaker: ``--speaker_of`` is a CSV ``path,speaker`` (a
relative path is relative to the CSV's folder; the demo corpus has one,
``<corpus>/speakers.csv``); without it each folder is one speaker. A
speaker with fewer than ``--min_speaker_utterances`` recordings is
normalised with the average training speaker's statistics, with a
warning. Unreadable, empty or too short files are reported one by one;
the others are still predicted. Warnings (stderr) come out before the
table (stdout) even when both go to one pipe (`cli.echo`).
"""

from __future__ import annotations

import csv
import logging
import pathlib
import time

from absl import app, flags

from fairser_jax import cli, fileio
from fairser_jax import detector as detector_lib
from fairser_jax import variants as variants_lib
from fairser_jax import workdir as workdir_lib
from fairser_jax.predict_inputs import (  # noqa: F401 (their old place)
    AUDIO_SUFFIXES,
    LIST_SUFFIXES,
    audio_files,
    out_problem,
    read_speaker_of,
    speakers_of,
)

_WORKDIR = flags.DEFINE_string("workdir", None, "A trained workdir.")
_AUDIO = flags.DEFINE_string(
    "audio", None, "Sound file, folder (recursive) or text file of paths."
)
_VARIANT = flags.DEFINE_string(
    "variant",
    None,
    "Variant whose detectors to use (default: the first the workdir has "
    f"of {', '.join(variants_lib.preference())}).",
)
_OUT = flags.DEFINE_string(
    "out",
    None,
    "Output CSV (default: <workdir>/predict/<audio name>.csv).",
)
_SPEAKER_OF = flags.DEFINE_string(
    "speaker_of",
    None,
    "CSV with columns path,speaker (relative paths are relative to the "
    "CSV's folder); a demo corpus has one, <corpus>/speakers.csv. Default: "
    "each folder is one speaker.",
)
_MIN_UTTERANCES = flags.DEFINE_integer(
    "min_speaker_utterances",
    detector_lib.MIN_SPEAKER_UTTERANCES,
    "Fewest recordings of a speaker normalised with its own statistics.",
    lower_bound=2,
)
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "Replace an existing --out file."
)

_SHOWN_ROWS = 10


def _describe(detector, chosen: bool, workdir: str) -> str:
    name = variants_lib.display_name(detector.variant)
    why = (
        "as asked"
        if chosen
        else (
            "the best two-sided variant in the workdir"
            if variants_lib.get(detector.variant).table == 3
            else "the workdir has no two-sided variant"
        )
    )
    models = len(detector.runs) // max(1, len(detector.emotions))
    return (
        f"variant: {name} ({detector.variant}; {why}), {models} models "
        f"(folds x seeds) per emotion, from {workdir}"
    )


def _table(rows: list[tuple[str, list[tuple[float, float, bool]]]], emotions):
    head = ["recording", *emotions]
    lines = [head]
    for name, cells in rows[:_SHOWN_ROWS]:
        lines.append(
            [name]
            + [
                f"{p:.2f}±{sd:.2f}{' *' if yes else '  '}"
                for p, sd, yes in cells
            ]
        )
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    text = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))
        for r in lines
    ]
    if len(rows) > _SHOWN_ROWS:
        text.append(f"... {len(rows) - _SHOWN_ROWS} more recording(s)")
    text.append("(probability ± SD over the models; * = yes)")
    return "\n".join(text)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not _WORKDIR.value or not _AUDIO.value:
        raise app.UsageError("--workdir and --audio are required.")
    cli.configure_logging()
    cli.enable_compilation_cache()
    program = "fairser_jax.predict"
    workdir = pathlib.Path(_WORKDIR.value)
    audio_path = pathlib.Path(_AUDIO.value)
    out = pathlib.Path(
        _OUT.value
        or workdir / "predict" / f"{audio_path.resolve().name or 'audio'}.csv"
    )
    files = cli.run_or_exit(program, lambda: audio_files(audio_path))
    inputs = [*files, audio_path]
    if _SPEAKER_OF.value:
        inputs.append(pathlib.Path(_SPEAKER_OF.value))
    problem = out_problem(out, inputs, overwrite=_OVERWRITE.value)
    if problem:
        raise SystemExit(f"{program}: error: {problem}")
    mapping = (
        cli.run_or_exit(program, lambda: read_speaker_of(_SPEAKER_OF.value))
        if _SPEAKER_OF.value
        else None
    )

    def load() -> detector_lib.Detector:
        # Shared: refused while main/train/report rewrite the workdir, so
        # the models read are those of one finished run.
        with workdir_lib.read_lock(workdir, program):
            return detector_lib.Detector.load(workdir, _VARIANT.value)

    detector = cli.run_or_exit(program, load)
    cli.echo(_describe(detector, _VARIANT.value is not None, str(workdir)))
    start = time.perf_counter()
    result = detector.extract(files, progress=True)
    kept = [files[int(i)] for i in result.ids]
    for item in result.skipped:
        logging.warning("not predicted: %s", item.message)
    if not kept:
        raise SystemExit(
            f"{program}: error: none of the {len(files)} recording(s) could "
            "be predicted (see the warnings above)."
        )
    speakers = speakers_of(kept, mapping)
    pred = detector.predict_features(
        result.features,
        speakers,
        min_speaker_utterances=_MIN_UTTERANCES.value,
    )
    detector_lib.warn_fallback(
        speakers, pred.normalization, _MIN_UTTERANCES.value
    )
    wall = time.perf_counter() - start
    out.parent.mkdir(parents=True, exist_ok=True)
    with fileio.atomic_write(out) as f:
        writer = csv.writer(f)
        writer.writerow(
            ["path", "variant", "emotion", "probability", "sd", "decision"]
        )
        for i, file in enumerate(kept):
            for e, emotion in enumerate(pred.emotions):
                writer.writerow(
                    [
                        str(file),
                        detector.variant,
                        emotion,
                        f"{pred.probability[i, e]:.6f}",
                        f"{pred.sd[i, e]:.6f}",
                        "yes" if pred.decision[i, e] else "no",
                    ]
                )
    base = audio_path if audio_path.is_dir() else audio_path.parent
    rows = []
    for i, file in enumerate(kept):
        try:
            name = str(file.relative_to(base))
        except ValueError:
            name = str(file)
        rows.append(
            (
                name,
                [
                    (
                        float(pred.probability[i, e]),
                        float(pred.sd[i, e]),
                        bool(pred.decision[i, e]),
                    )
                    for e in range(len(pred.emotions))
                ],
            )
        )
    cli.echo(_table(rows, pred.emotions))
    seconds = result.audio_seconds
    cli.echo(
        f"{len(kept)} of {len(files)} recording(s) predicted"
        + (
            f", {len(result.skipped)} not (see warnings)"
            if result.skipped
            else ""
        )
        + f" in {wall:.1f} s: {len(kept) / wall:.1f} recordings/s, "
        f"{seconds / wall:.1f}x real time ({seconds:.0f} s of audio); "
        f"wrote {out}"
    )


if __name__ == "__main__":
    cli.run_entry("fairser_jax.predict", main)
