r"""Feature-extraction throughput: this Flax extractor vs HF PyTorch.

    python benchmarks/extract.py [--family=all] [--num_utterances=24]
        [--batch_seconds=32]

For each encoder family (``--family``: wav2vec2, hubert, wavlm,
data2vec-audio, or all of them in turn), both sides run the same
base-sized network with the same random weights (the HF model of that
family from its config class's defaults, e.g. ``WavLMConfig()``, with
PyTorch's random init, written with ``save_pretrained`` and read into Flax
with ``weights.load``), on the same files with an IEMOCAP-like length
distribution (log-normal around 3.5 s, clipped to 1-15 s), with the same
batch policy (``audio.plan_batches``: sorted by length, padded to the
length ladder, ``batch × padded ≤ batch_seconds × 16 kHz``) and the same
audio reading / resampling / normalisation code; only the network differs.
PyTorch runs ``Wav2Vec2Model`` under ``torch.no_grad()`` with the
attention mask and pools the mean over its valid frames.

Each side runs in its own worker subprocess (peak memory = ``ru_maxrss``
of that process; ``tracemalloc`` does not see XLA's or PyTorch's
allocations). Each extracts the whole set once "cold" (for JAX this
includes compiling every batch shape) and then ``--rounds`` times "warm",
the passes alternating between the two sides so that load from other
processes on a shared machine hits both alike; the warm time is the best
pass. The CPU seconds (user + sys of the worker, best warm pass) are less
sensitive to such load than wall time. Warm is the steady state of a real
corpus: compilation is per shape (at most one per ladder rung, plus one)
and amortised over thousands of utterances. The script prints one table
and the ratios per family, then (with several families) a summary.
"""

import argparse
import json
import os
import pathlib
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

SAMPLE_RATE = 16_000
FAMILIES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio")


def _hf_classes(family: str) -> tuple[type, type]:
    """HF PyTorch's (config class, model class) of a `model_type`."""
    import transformers

    config_class = transformers.CONFIG_MAPPING[family]
    return config_class, transformers.MODEL_MAPPING[config_class]


def _checkpoint_dir(workdir: pathlib.Path, family: str) -> pathlib.Path:
    return workdir / f"checkpoint-{family}"


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def prepare(
    workdir: pathlib.Path, num_utterances: int, seed: int, family: str
) -> None:
    """Writes the family's random base-sized checkpoint and the wav files."""
    import soundfile
    import torch
    import transformers

    from fairser_jax.data import demo_corpus

    ckpt = _checkpoint_dir(workdir, family)
    if not (ckpt / "model.safetensors").exists():
        torch.manual_seed(seed)
        config_class, model_class = _hf_classes(family)
        model = model_class(config_class())
        model.save_pretrained(ckpt)
        transformers.Wav2Vec2FeatureExtractor(
            do_normalize=True, return_attention_mask=False
        ).save_pretrained(ckpt)
    rng = np.random.default_rng(seed)
    seconds = np.clip(rng.lognormal(np.log(3.5), 0.7, num_utterances), 1, 15)
    seconds[0], seconds[-1] = 1.0, 15.0  # both ends of the range
    wav_dir = workdir / "wav"
    wav_dir.mkdir(exist_ok=True)
    for i, duration in enumerate(seconds):
        signal = demo_corpus.synthesize(
            np.random.default_rng([seed, i]),
            num_samples=int(duration * SAMPLE_RATE),
            latent="neutral",
            intensity=0.5,
            speaker_f0=120.0 if i % 2 else 210.0,
            formant_scale=1.0 if i % 2 else 1.15,
        )
        soundfile.write(wav_dir / f"utt{i:03d}.wav", signal, SAMPLE_RATE)


def _files(workdir: pathlib.Path) -> list[pathlib.Path]:
    return sorted((workdir / "wav").glob("*.wav"))


class _JaxSide:
    def __init__(
        self, workdir: pathlib.Path, batch_seconds: float, family: str
    ):
        import jax

        from fairser_jax.wav2vec2 import extraction, weights

        loaded = weights.load(_checkpoint_dir(workdir, family))
        assert loaded.config.model_type == family
        self.extractor = extraction.Extractor(
            loaded, batch_seconds=batch_seconds
        )
        self.paths = _files(workdir)
        self.info = {"version": jax.__version__, "devices": str(jax.devices())}

    def run(self) -> tuple[np.ndarray, float]:
        result = self.extractor.run(
            [p.stem for p in self.paths], self.paths, progress=False
        )
        return result.features, result.audio_seconds


class _TorchSide:
    def __init__(
        self, workdir: pathlib.Path, batch_seconds: float, family: str
    ):
        import torch

        from fairser_jax.wav2vec2 import audio

        self.torch, self.audio = torch, audio
        self.model = (
            _hf_classes(family)[1]
            .from_pretrained(_checkpoint_dir(workdir, family))
            .eval()
        )
        config = self.model.config
        self.receptive, self.hop = audio.conv_geometry(
            config.conv_kernel, config.conv_stride
        )
        self.prep = audio.Preprocessing(
            sample_rate=SAMPLE_RATE,
            do_normalize=True,
            min_samples=self.receptive,
        )
        self.batch_samples = int(batch_seconds * SAMPLE_RATE)
        self.paths = _files(workdir)
        self.info = {
            "version": torch.__version__,
            "threads": torch.get_num_threads(),
            "attn": getattr(config, "_attn_implementation", "?"),
        }

    def run(self) -> tuple[np.ndarray, float]:
        torch, audio, model = self.torch, self.audio, self.model
        lengths = [audio.probe_length(p, SAMPLE_RATE) for p in self.paths]
        batches = audio.plan_batches(
            lengths,
            batch_samples=self.batch_samples,
            receptive=self.receptive,
            hop=self.hop,
        )
        pooled = np.zeros((len(self.paths), model.config.hidden_size))
        samples = 0
        for batch in batches:
            waves = [
                audio.load_waveform(self.paths[i], self.prep)
                for i in batch.indices
            ]
            samples += sum(w.shape[0] for w in waves)
            values, mask = audio.pad_batch(
                waves, batch.padded_length, batch.batch_size
            )
            mask_t = torch.from_numpy(mask).long()
            with torch.no_grad():
                hidden = model(
                    torch.from_numpy(values), attention_mask=mask_t
                ).last_hidden_state
                frames = model._get_feature_vector_attention_mask(
                    hidden.shape[1], mask_t
                ).to(hidden.dtype)
                mean = (hidden * frames[..., None]).sum(1)
                mean = mean / frames.sum(1)[:, None]
            for row, index in enumerate(batch.indices):
                pooled[index] = mean[row].numpy()
        return pooled.astype(np.float32), samples / SAMPLE_RATE

    def alone(self, count: int = 3) -> dict:
        """Unpadded, unmasked features of the ``count`` shortest files."""
        torch, audio = self.torch, self.audio
        lengths = [audio.probe_length(p, SAMPLE_RATE) for p in self.paths]
        indices = [int(i) for i in np.argsort(lengths)[:count]]
        features = []
        for i in indices:
            wave = audio.load_waveform(self.paths[i], self.prep)
            with torch.no_grad():
                hidden = self.model(torch.from_numpy(wave[None]))
            features.append(hidden.last_hidden_state[0].mean(0).tolist())
        return {"indices": indices, "features": features}


def worker(
    side: str, workdir: pathlib.Path, batch_seconds: float, family: str
) -> None:
    """Serves ``run`` / ``quit`` commands on stdin, one JSON line each."""
    cls = _JaxSide if side == "jax" else _TorchSide
    impl = cls(workdir, batch_seconds, family)
    print(json.dumps({"ready": True, **impl.info}), flush=True)
    for line in sys.stdin:
        if line.strip() == "run":
            cpu_start = _cpu_seconds()
            start = time.perf_counter()
            features, audio_s = impl.run()
            wall = time.perf_counter() - start
            print(
                json.dumps(
                    {
                        "wall_s": wall,
                        "cpu_s": _cpu_seconds() - cpu_start,
                        "audio_s": audio_s,
                        "num": int(features.shape[0]),
                        "features": features.tolist(),
                    }
                ),
                flush=True,
            )
        elif line.strip() == "alone":
            print(json.dumps(impl.alone()), flush=True)
        else:
            print(json.dumps({"peak_rss_mib": _peak_rss_mib()}), flush=True)
            return


class _Worker:
    def __init__(self, side: str, args: argparse.Namespace, family: str):
        self.side = side
        self.proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                f"--side={side}",
                f"--workdir={args.workdir}",
                f"--batch_seconds={args.batch_seconds}",
                f"--family={family}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.info = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(
                f"{self.side} worker died (exit {self.proc.wait()})"
            )
        return json.loads(line)

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()


def compare(family: str, args: argparse.Namespace) -> dict[str, float]:
    """Runs both sides on one family, prints its table; returns ratios."""
    workdir = pathlib.Path(args.workdir)
    prepare(workdir, args.num_utterances, args.seed, family)
    sides = ("torch", "jax")
    workers = {side: _Worker(side, args, family) for side in sides}
    passes: dict[str, list[dict]] = {side: [] for side in sides}
    # Cold passes first, then warm passes alternating between the two
    # sides, so that load from other processes hits both alike.
    for _ in range(1 + args.rounds):
        for side in sides:
            passes[side].append(workers[side].ask("run"))
    alone = workers["torch"].ask("alone")
    peaks = {side: workers[side].ask("quit")["peak_rss_mib"] for side in sides}

    pt, jx = workers["torch"].info, workers["jax"].info
    audio_s = passes["torch"][0]["audio_s"]
    num = passes["torch"][0]["num"]
    print(
        f"\n== {family} ==\nhost: {platform.machine()}, {os.cpu_count()} "
        f"cores, load avg {os.getloadavg()[0]:.1f}; jax {jx['version']} "
        f"{jx['devices']}; torch {pt['version']} ({pt['threads']} threads, "
        f"attention={pt['attn']})"
    )
    print(
        f"{num} utterances, {audio_s:.1f} s of audio (1-15 s each), "
        f"batch_seconds={args.batch_seconds}, base-sized {family}, random "
        f"weights; warm = best of {args.rounds} alternating passes"
    )
    print(
        f"{'':6} {'cold s':>7} {'warm s':>7} {'utt/s':>6} {'RTF':>7} "
        f"{'x realtime':>10} {'CPU s':>7} {'peak RSS MiB':>12}"
    )
    warm, cold, cpu = {}, {}, {}
    for side in sides:
        cold[side] = passes[side][0]["wall_s"]
        warm[side] = min(p["wall_s"] for p in passes[side][1:])
        cpu[side] = min(p["cpu_s"] for p in passes[side][1:])
        print(
            f"{side:6} {cold[side]:7.2f} {warm[side]:7.2f} "
            f"{num / warm[side]:6.2f} {warm[side] / audio_s:7.4f} "
            f"{audio_s / warm[side]:10.1f} {cpu[side]:7.1f} "
            f"{peaks[side]:12.0f}"
        )
    per_round = [
        t["wall_s"] / j["wall_s"]
        for t, j in zip(passes["torch"][1:], passes["jax"][1:], strict=True)
    ]
    ratios = {
        "warm": warm["torch"] / warm["jax"],
        "cpu": cpu["torch"] / cpu["jax"],
        "cold": cold["torch"] / cold["jax"],
        "memory": peaks["jax"] / peaks["torch"],
    }
    print(
        f"throughput jax/torch: warm {ratios['warm']:.2f}x "
        f"(per round: {', '.join(f'{r:.2f}' for r in per_round)}); "
        f"CPU time {ratios['cpu']:.2f}x; cold incl. compile "
        f"{ratios['cold']:.2f}x; peak memory jax/torch "
        f"{ratios['memory']:.2f}x"
    )
    # Same network on both sides: our batched, padded features of the
    # shortest files against PyTorch on each file alone (no padding).
    ours = np.asarray(passes["jax"][-1]["features"])[alone["indices"]]
    ratios["diff"] = float(np.abs(ours - np.asarray(alone["features"])).max())
    print(
        f"check: jax (batched, padded) vs torch (alone) on the "
        f"{len(alone['indices'])} shortest files: max abs diff "
        f"{ratios['diff']:.1e}"
    )
    return ratios


def main() -> None:
    from fairser_jax.wav2vec2 import extraction

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--family", choices=[*FAMILIES, "all"], default="all")
    parser.add_argument("--num_utterances", type=int, default=24)
    parser.add_argument(
        "--batch_seconds", type=float, default=extraction.DEFAULT_BATCH_SECONDS
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="warm passes per side"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--side", choices=["jax", "torch"], default=None)
    args = parser.parse_args()

    if args.side is not None:
        worker(
            args.side,
            pathlib.Path(args.workdir),
            args.batch_seconds,
            args.family,
        )
        return

    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench_extract_")
        args.workdir = tmp.name
    pathlib.Path(args.workdir).mkdir(parents=True, exist_ok=True)
    families = FAMILIES if args.family == "all" else (args.family,)
    results = {family: compare(family, args) for family in families}
    if len(results) > 1:
        print("\nsummary, jax/torch (higher is faster for jax):")
        print(
            f"{'family':15} {'warm':>6} {'CPU':>6} {'cold':>6} "
            f"{'memory':>7} {'max diff':>9}"
        )
        for family, r in results.items():
            print(
                f"{family:15} {r['warm']:6.2f} {r['cpu']:6.2f} "
                f"{r['cold']:6.2f} {r['memory']:7.2f} {r['diff']:9.1e}"
            )
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
