"""Shared pytest fixtures."""

import os
import subprocess
import sys

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded NumPy generator for each test."""
    return np.random.default_rng(0)


def run_on_fake_devices(script: str, num_devices: int = 4) -> None:
    """Runs `script` in a fresh Python whose CPU shows `num_devices`."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={num_devices}"
    env["JAX_PLATFORMS"] = "cpu"
    subprocess.run(
        [sys.executable, "-c", script], check=True, env=env, timeout=600
    )
