"""What the throughput and accuracy benchmarks share: the workload, the data, the machine record.

Run the benchmarks as scripts (``python benchmarks/throughput.py``); this folder is not a
package, so they import this module, and ``original_numpy``, by file name.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# The headline workload: the original README's first example row.
HEADLINE = dict(architecture="dendritic_simple", n_neurons=12, n_dendrites=6,
                n_dendrite_inputs=96, synaptic_resampling=True, percentage_resample=0.25,
                steps_to_resample=128)


def stop_on_sigterm() -> None:
    """Make SIGTERM (what `timeout` sends) end the run like Ctrl-C, so that the caller's
    ``except KeyboardInterrupt`` still writes the figures measured so far."""

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def say(message: str) -> None:
    """A progress line, flushed at once (the GPU script streams its log)."""
    print(message, flush=True)


def add_data_arguments(parser) -> None:
    parser.add_argument("--data-dir", default=None,
                        help="folder with the Fashion-MNIST .gz files (default: "
                             "$DENDRAX_DATA_DIR, then /usr/share/datasets/fashion-mnist)")
    parser.add_argument("--subset", type=int, default=None,
                        help="train on this many training examples (stratified); default all")
    parser.add_argument("--eval-subset", type=int, default=None,
                        help="keep only this many validation and test examples each")
    parser.add_argument("--allow-sample", action="store_true",
                        help="fall back to the 5,000-image sample shipped in the package "
                             "(tests only: the figures then mean little)")


def load_data(args):
    """Fashion-MNIST as a dendrax Dataset: never downloads, never falls back silently."""
    from dendrax.data import load_dataset

    sources = ("dir", "system") + (("sample",) if args.allow_sample else ())
    data = load_dataset("fashion-mnist", data_dir=args.data_dir, subset_size=args.subset,
                        sources=sources, download=False)
    if args.eval_subset:
        n = args.eval_subset
        data = dataclasses.replace(data, x_val=data.x_val[:n], y_val=data.y_val[:n],
                                   x_test=data.x_test[:n], y_test=data.y_test[:n])
    return data


def data_record(data) -> dict[str, Any]:
    return {"name": data.name, "source": data.source, "is_sample": bool(data.is_sample),
            "n_train": len(data.x_train), "n_val": len(data.x_val),
            "n_test": len(data.x_test), "in_dim": data.in_dim, "n_classes": data.n_classes}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except Exception:  # noqa: BLE001 - a missing optional package is recorded as None
        return None


def _git_commit() -> str | None:
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode:
        return None
    return head.stdout.strip() + (" (uncommitted changes)" if dirty.stdout.strip() else "")


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def command_line() -> str:
    """The command as anyone reruns it: ``python`` and the script's path in the repository
    (not this machine's interpreter path), then the arguments as given."""
    script = Path(sys.argv[0]).resolve()
    try:
        shown = str(script.relative_to(REPO))
    except ValueError:
        shown = script.name
    return " ".join(shlex.quote(a) for a in ["python", shown, *sys.argv[1:]])


def machine_record() -> dict[str, Any]:
    """Where and with what the figures were measured: goes into every JSON file."""
    import jax

    devices = jax.devices()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command_line(),
        "cpu": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "backend": jax.default_backend(),
        "device": devices[0].device_kind,
        "device_count": len(devices),
        "python": platform.python_version(),
        "versions": {m: _version(m) for m in ("jax", "jaxlib", "flax", "optax", "numpy",
                                               "matplotlib")},
        "git": _git_commit(),
        # Other processes compete for a small CPU: the load when the run began.
        "load_average": load_average(),
        "env": {k: os.environ[k] for k in ("JAX_PLATFORMS", "XLA_FLAGS", "OMP_NUM_THREADS",
                                           "OPENBLAS_NUM_THREADS", "CUDA_VISIBLE_DEVICES")
                if k in os.environ},
    }


def device_name(machine: dict[str, Any]) -> str:
    """The device that ran JAX, in words: the GPU's kind, or the CPU and its cores."""
    if machine["backend"] == "cpu":
        return f"CPU only: {machine['cpu']}, {machine['cpu_cores']} cores"
    return f"{machine['device']} ({machine['backend']}) × {machine['device_count']}"


def machine_line(machine: dict[str, Any]) -> str:
    v = machine["versions"]
    host = "" if machine["backend"] == "cpu" else \
        f"; host CPU {machine['cpu']}, {machine['cpu_cores']} cores"
    return (f"{device_name(machine)}{host}; jax {v['jax']}, jaxlib {v['jaxlib']}, "
            f"flax {v['flax']}, optax {v['optax']}, numpy {v['numpy']}, python "
            f"{machine['python']}; {machine['date']}; git {machine['git']}")


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically, so a run killed mid-write leaves the previous complete file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=float) + "\n")
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
