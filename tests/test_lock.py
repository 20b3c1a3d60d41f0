"""The installed packages are the ones `requirements.lock` pins.

The README's commands and `.ci/run` install with `-c requirements.lock`, so a
result of this project is a function of the lock, not of the day it was
installed. This test walks the installed requirement graph of
`fairser_jax[test]` (markers evaluated for this interpreter) and fails on any
package that is missing from the lock or installed at another version: a
green suite then says the lock was what it ran under.
"""

import importlib.metadata
import pathlib
import re

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

LOCK = pathlib.Path(__file__).resolve().parents[1] / "requirements.lock"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def read_lock(path: pathlib.Path = LOCK) -> dict[str, Version]:
    """{canonical name: pinned version} of a pip-compile output file."""
    pins = {}
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line or line[0] in " #-":
            continue
        m = _PIN.match(line)
        if not m:
            raise ValueError(f"{path}:{number}: not a 'name==version' pin")
        pins[canonicalize_name(m[1])] = Version(m[2])
    return pins


def installed_closure(root: str, extras: set[str]) -> dict[str, Version]:
    """{canonical name: installed version} of `root[extras]` and everything
    it requires, transitively, for this interpreter and platform."""
    seen: dict[str, Version] = {}
    todo = [(root, frozenset(extras))]
    done = set()
    while todo:
        name, wanted = todo.pop()
        if (name, wanted) in done:
            continue
        done.add((name, wanted))
        dist = importlib.metadata.distribution(name)
        seen[canonicalize_name(name)] = Version(dist.version)
        for text in dist.requires or []:
            req = Requirement(text)
            envs = [{"extra": e} for e in wanted] or [{"extra": ""}]
            if req.marker is not None and not any(
                req.marker.evaluate(env) for env in envs
            ):
                continue
            todo.append((req.name, frozenset(req.extras)))
    return seen


def test_lock_parses_and_pins_the_direct_requirements():
    pins = read_lock()
    meta = importlib.metadata.distribution("fairser_jax")
    direct = {canonicalize_name(Requirement(r).name) for r in meta.requires}
    assert direct - set(pins) == set()
    # torch is a public release (the wheel on disk is "+cpu", which
    # `==2.13.0` matches); a local label would not install elsewhere.
    assert pins["torch"] == Version("2.13.0")


def test_installed_versions_equal_the_lock():
    pins = read_lock()
    installed = installed_closure("fairser_jax", {"test"})
    installed.pop("fairser-jax")
    unlocked = sorted(set(installed) - set(pins))
    assert not unlocked, f"installed but not in requirements.lock: {unlocked}"
    differ = {
        name: (str(v), str(pins[name]))
        for name, v in installed.items()
        # A local build label (torch's "+cpu") is the same release.
        if Version(v.public) != pins[name]
    }
    assert not differ, (
        f"installed (left) differs from requirements.lock (right): {differ};"
        ' install with: pip install -e ".[test]" -c requirements.lock'
    )


def test_read_lock_refuses_an_unpinned_line(tmp_path):
    lock = tmp_path / "lock.txt"
    lock.write_text("# header\njax==0.10.2\n    # via x\nflax>=0.8\n")
    with pytest.raises(ValueError, match=r"lock.txt:4"):
        read_lock(lock)
