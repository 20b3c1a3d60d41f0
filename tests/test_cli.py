"""What the entry points print besides their work (`fairser_jax.cli`):
`--config_help`, the closing "Done in" line, stdout in order with the
log."""

import os
import pathlib
import subprocess
import sys

import pytest

from fairser_jax import cli
from fairser_jax import config as config_lib

REPO = pathlib.Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    """This environment with stdout block-buffered, as for a user who
    pipes the output (`2>&1 | tee log`)."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("PYTHONUNBUFFERED", None)
    return env


@pytest.mark.parametrize(
    "seconds, text",
    [(0.4, "0s"), (42.4, "42s"), (59.6, "1m00s"), (475, "7m55s")]
    + [(3600 * 2 + 190, "2h03m10s")],
)
def test_format_duration(seconds, text):
    assert cli.format_duration(seconds) == text


def test_describe_outputs_counts_what_the_report_links(tmp_path):
    """A figure left by an earlier release is not counted; a PNG and its
    PDF are one figure, a CSV and its TeX one table."""
    (tmp_path / "figures").mkdir()
    for name in ("a.png", "a.pdf", "b.png", "old.png"):
        (tmp_path / "figures" / name).write_bytes(b"")
    (tmp_path / "report.md").write_text(
        "![a](figures/a.png) [PDF](figures/a.pdf) ![b](figures/b.png)\n"
        "[CSV](tables/t1.csv) · [LaTeX](tables/t1.tex)\n",
        encoding="utf-8",
    )
    (tmp_path / "predictions.csv").write_text("x,y\n1,2\n3,4\n5,6\n")
    assert cli.describe_outputs(tmp_path) == (
        f"report.md, 1 table, 2 figures, predictions.csv (3 rows) in {tmp_path}"
    )
    assert cli.describe_outputs(tmp_path / "none") == (
        f"nothing in {tmp_path / 'none'}"
    )


ECHO_BETWEEN_WARNINGS = """
from absl import app, logging
from fairser_jax import cli
def main(argv):
    cli.configure_logging()
    logging.warning("first warning")
    cli.echo("printed line")
    logging.warning("second warning")
    cli.echo("last line")
app.run(main)
"""


def test_echo_keeps_stdout_in_order_with_the_log():
    """stdout and stderr into one pipe, stdout block-buffered: the lines
    come out in the order the program wrote them."""
    proc = subprocess.run(
        [sys.executable, "-c", ECHO_BETWEEN_WARNINGS],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout
    lines = [
        line
        for line in proc.stdout.splitlines()
        if any(w in line for w in ("warning", "line"))
    ]
    assert [line.split("] ")[-1] for line in lines] == [
        "first warning",
        "printed line",
        "second warning",
        "last line",
    ]


def test_config_help_describes_every_field_and_flag():
    """One line per field: value, type, description, allowed values; then
    one line per flag of the entry point, --resume and --overwrite
    among them."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fairser_jax.main",
            "--config=configs/demo.py",
            "--config_help",
        ],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for name, _ in config_lib.flatten(config_lib.get_default_config()):
        [line] = [x for x in lines if x.startswith(f"  --config.{name}=")]
        assert line.endswith(config_lib.field_help(name)), line
    [line] = [x for x in lines if x.startswith("  --config.features.layer=")]
    assert line.startswith("  --config.features.layer=1  (int)")  # demo's
    [line] = [x for x in lines if x.startswith("  --config.loss.group_pool")]
    assert line.endswith("One of: pairs, pooled.")
    flag_lines = lines[lines.index("Flags:") + 1 :]
    names = [x.split()[0] for x in flag_lines]
    assert names == [
        "--config",
        "--workdir",
        "--resume",
        "--overwrite",
        "--config_help",
        "--distributed",
        "--coordinator_address",
        "--num_processes",
        "--process_id",
        "--local_device_ids",
        "--distributed_timeout",
        "--distributed_heartbeat",
    ]
    by_name = dict(zip(names, flag_lines, strict=True))
    assert "Continue the run in --workdir" in by_name["--resume"]
    assert "Discard the previous run" in by_name["--overwrite"]
    assert "<auto|on|off>" in by_name["--distributed"]


def test_a_repeated_flag_is_refused_before_any_work(tmp_path):
    """`--config.seeds='(0,)' --config.seeds='(1,)'` used to train seeds
    (0, 1): absl joined the two tuples. Now it is one line, exit 2, and
    the workdir is not even made."""
    assert cli.repeated_flags(
        [
            "prog",
            "--config.seeds=(0,)",
            "--workdir=a",
            "--config.seeds=(1,)",
            "--workdir=b",  # not a config field: absl's last-wins
            "--",
            "--config.x=1",
            "--config.x=2",
        ]
    ) == ["--config.seeds"]
    work = tmp_path / "work"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fairser_jax.train",
            "--config=configs/test.py",
            f"--workdir={work}",
            "--config.seeds=(0,)",
            "--config.seeds=(1,)",
        ],
        cwd=REPO,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--config.seeds given more than once" in lines[0]
    assert not work.exists()


@pytest.mark.parametrize(
    "code, words",
    [
        (28, ("No space left on device writing /w/params/dnn.npz", "--resume")),
        (30, ("Read-only file system writing /w/params/dnn.npz", "writable")),
        (13, ("Permission denied writing /w/params/dnn.npz", "can write")),
    ],
)
def test_a_full_or_read_only_disk_is_one_line(code, words):
    """Disk full (ENOSPC) or a read-only store used to end in a traceback;
    here the OSError is simulated (a real full disk needs a small tmpfs,
    which this machine's tests cannot mount)."""
    import errno

    assert code in (errno.ENOSPC, errno.EROFS, errno.EACCES)

    def fail():
        raise OSError(code, os.strerror(code), "/w/params/dnn.npz")

    with pytest.raises(SystemExit) as info:
        cli.run_or_exit("prog", fail)
    text = str(info.value)
    assert text.startswith("prog: error: ")
    for word in words:
        assert word in text, text

    def other():
        raise OSError(5, "Input/output error")

    with pytest.raises(OSError):  # not the storage's: a real traceback
        cli.run_or_exit("prog", other)


def test_a_bad_config_file_is_one_line(tmp_path):
    returns_int = tmp_path / "int_config.py"
    returns_int.write_text("def get_config():\n    return 3\n")
    for config, words in (
        (tmp_path / "missing.py", ("cannot load --config", "No such file")),
        (returns_int, ("value of type int", "get_default_config")),
    ):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "fairser_jax.train",
                f"--config={config}",
                f"--workdir={tmp_path / 'w'}",
            ],
            cwd=REPO,
            env=dict(os.environ, JAX_PLATFORMS="cpu"),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 1, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        for word in words:
            assert word in lines[0], lines[0]
