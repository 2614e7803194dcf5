"""aedyn from Python: the command line's runs as functions that return pandas DataFrames.

Every function takes the command line's options as keyword arguments, with underscores for
dashes (``t_end=100`` for ``--t-end 100``). Defaults and validation are the command line's own:
the arguments become a command line that the same Rust code parses, checks and runs, in this
process, with its outputs kept in memory. ``aedyn.ode.__doc__`` (or ``help(aedyn.ode)``) lists
every option with its meaning and default.

>>> import aedyn
>>> df = aedyn.ode(k=3, spikes=[9, 3, 1], t_end=100)
>>> df.attrs["eg"]  # the summary: method, steps, seconds, backend, the inputs, ...
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from . import _aedyn
from ._aedyn import InputError, RunError

__version__: str = _aedyn.__version__
__all__ = [
    "InputError",
    "RunError",
    "Model",
    "Result",
    "ode",
    "compare",
    "sgd",
    "spectrum",
    "reduced_vs_full",
    "sweep",
    "options",
]

# Options that name files or say how a run talks: the functions choose them.
_OUTPUT_OPTIONS = {"out", "overlaps", "density", "images-out", "out-prefix", "json", "quiet"}


@dataclass(frozen=True)
class Option:
    """One option of a command, as ``aedyn COMMAND --help`` gives it."""

    name: str
    help: str
    default: Optional[str]
    switch: bool

    @property
    def keyword(self) -> str:
        return self.name.replace("-", "_")


_OPTION_CACHE: Dict[str, Dict[str, Option]] = {}


def options(command: str) -> Dict[str, Option]:
    """The options of ``command`` (``"ode"``, ``"compare"``, ...) by keyword, from the Rust code."""
    if command not in _OPTION_CACHE:
        found = {o[0]: Option(*o) for o in _aedyn.options(command)}
        if not found:
            raise InputError(f"unknown command `{command}`")
        _OPTION_CACHE[command] = {o.keyword: o for o in found.values() if o.name not in _OUTPUT_OPTIONS}
    return _OPTION_CACHE[command]


def _scalar(key: str, value: Any) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        raise InputError(f"{key}: {value} is not a number or a name")
    if isinstance(value, float):
        # repr round-trips every float; inf and nan go through as the command line spells them.
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, (int, str, os.PathLike)):
        return os.fspath(value) if isinstance(value, os.PathLike) else str(value)
    raise InputError(f"{key}: cannot pass a {type(value).__name__}")


def _finite_matrix(key: str, value: Any, rows: Optional[int] = None) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InputError(f"{key}: not an array of numbers ({e})") from None
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(f"{key}: expected a 2-D array, got shape {array.shape}")
    if rows is not None and array.shape[0] != rows:
        raise InputError(f"{key}: expected {rows} rows, got {array.shape[0]}")
    bad = np.argwhere(~np.isfinite(array))
    if len(bad):
        row, column = bad[0]
        raise InputError(f"{key}: entry ({row}, {column}) is {array[row, column]}, not a finite number")
    return array


def _data_file(value: Any, folder: str) -> str:
    """``data=``: a path as it is; an array (samples x D) saved as .npy, which the loader
    standardises exactly as it does a file."""
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    array = _finite_matrix("data", value)
    path = os.path.join(folder, "data.npy")
    np.save(path, array)
    return path


def _weights_file(value: Any, folder: str) -> str:
    """``weights=(w, v)``: two K x D arrays, written as the weights file the command line reads
    (2K lines of D numbers, encoder rows first)."""
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise InputError("weights: expected (w, v), two K x D arrays, or a path")
    w = _finite_matrix("weights (w)", value[0])
    v = _finite_matrix("weights (v)", value[1], rows=w.shape[0])
    if v.shape != w.shape:
        raise InputError(f"weights: w is {w.shape[0]} x {w.shape[1]} but v is {v.shape[0]} x {v.shape[1]}")
    path = os.path.join(folder, "weights.txt")
    np.savetxt(path, np.vstack([w, v]), fmt="%.17g")
    return path


def _command_line(command: str, given: Dict[str, Any], folder: str) -> List[str]:
    known = options(command)
    argv = [command]
    for key, value in given.items():
        option = known.get(key)
        if option is None:
            names = ", ".join(sorted(known))
            raise InputError(f"unknown option `{key}` for {command}: expected one of {names}")
        if value is None:
            continue
        flag = f"--{option.name}"
        if option.switch:
            if not isinstance(value, (bool, np.bool_)):
                raise InputError(f"{key} is a switch: give True or False, not {value!r}")
            if value:
                argv.append(flag)
        elif key == "data":
            argv += [flag, _data_file(value, folder)]
        elif key == "weights":
            argv += [flag, _weights_file(value, folder)]
        elif key == "param":
            pairs = value.items() if isinstance(value, dict) else [str(p).split("=", 1) for p in value]
            for name, number in pairs:
                argv += [flag, f"{name}={_scalar(key, number)}"]
        elif isinstance(value, (list, tuple, np.ndarray)):
            argv += [flag, ",".join(_scalar(key, v) for v in value)]
        else:
            argv += [flag, _scalar(key, value)]
    return argv


class _Progress:
    """A tqdm bar for runs that last longer than a second, where tqdm is installed."""

    def __init__(self, what: str):
        self.what = what
        self.bar = None

    def __call__(self, position: int, length: int, seconds: float) -> None:
        if self.bar is None:
            if seconds < 1.0 or length == 0:
                return
            try:
                from tqdm.auto import tqdm
            except ImportError:
                return
            self.bar = tqdm(total=length, desc=self.what, leave=False)
        self.bar.total = length
        self.bar.n = position
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run(command: str, given: Dict[str, Any], outputs: Dict[str, str]) -> Tuple[dict, Dict[str, bytes]]:
    """Runs ``command`` with keyword options ``given``; ``outputs`` maps each output option to
    the name its bytes come back under. Returns the summary and the outputs by that name."""
    with tempfile.TemporaryDirectory(prefix="aedyn-") as folder:
        argv = _command_line(command, given, folder)
        paths = {}
        for option, name in outputs.items():
            path = os.path.join(folder, name)
            argv += [f"--{option}", path]
            paths[path] = name
        argv += ["--quiet", "--json"]
        progress = _Progress(command)
        try:
            summary, files = _aedyn.run(argv, progress)
        finally:
            progress.close()
    summary = json.loads(summary)
    summary.pop("out", None)
    return summary, {paths.get(path, path): bytes(data) for path, data in files}


def _frame(data: bytes, summary: dict) -> pd.DataFrame:
    import io

    frame = pd.read_csv(io.BytesIO(data))
    frame.attrs.update(summary)
    return frame


@dataclass
class Result:
    """A run with more than one table: ``main`` as the plain function returns it, and the
    extra tables asked for (``overlaps``, ``images``, ``density``)."""

    main: pd.DataFrame
    overlaps: Optional[pd.DataFrame] = None
    images: Optional[pd.DataFrame] = None
    density: Optional[pd.DataFrame] = None
    summary: dict = field(default_factory=dict)


def _tables(command: str, options: Dict[str, Any], extra: Optional[str] = None, field_name: str = ""):
    """The main table of ``command``; with the output option ``extra``, a Result that also
    holds that table as ``field_name``."""
    outputs = {"out": "main.csv"}
    if extra:
        outputs[extra] = "extra.csv"
    summary, files = _run(command, options, outputs)
    main = _frame(files["main.csv"], summary)
    if not extra:
        return main
    return Result(main=main, summary=summary, **{field_name: _frame(files["extra.csv"], summary)})


def ode(**options: Any) -> pd.DataFrame:
    return _tables("ode", options)


def compare(*, overlaps: bool = False, **options: Any):
    return _tables("compare", options, "overlaps" if overlaps else None, "overlaps")


def sgd(*, images: Optional[int] = None, **options: Any):
    if images:
        options = dict(options, images=images)
    return _tables("sgd", options, "images-out" if images else None, "images")


def spectrum(*, density: bool = False, **options: Any):
    return _tables("spectrum", options, "density" if density else None, "density")


def reduced_vs_full(**options: Any) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """Returns (full, reduced): the full run and the reduced run from the aligned state."""
    summary, files = _run("reduced-vs-full", options, {"out-prefix": "rvf"})
    by_suffix = {name.rsplit("_", 1)[-1]: data for name, data in files.items()}
    return _frame(by_suffix["full.csv"], summary), _frame(by_suffix["reduced.csv"], summary)


def _toml_value(key: str, value: Any) -> str:
    """A value in a sweep file (TOML)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
    if isinstance(value, (str, os.PathLike)):
        return json.dumps(os.fspath(value))
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ", ".join(_toml_value(key, v) for v in value) + "]"
    raise InputError(f"{key}: cannot pass a {type(value).__name__} in a sweep")


def _sweep_file(command: str, grid: Dict[str, Any], fixed: Dict[str, Any], zipped: Dict[str, Any]) -> Tuple[str, int]:
    """The sweep file of these tables, and its number of points."""
    known = options(command)
    lines = [f"command = {json.dumps(command)}"]
    count = 1
    for section, table in (("fixed", fixed), ("grid", grid), ("zip", zipped)):
        if not table:
            continue
        lines.append(f"[{section}]")
        for key, value in table.items():
            if key not in known:
                raise InputError(f"unknown option `{key}` for {command}: expected one of {', '.join(sorted(known))}")
            if section != "fixed":
                if not isinstance(value, (list, tuple, np.ndarray)):
                    raise InputError(f"{section} `{key}`: expected a list of values")
                count *= len(value) if section == "grid" else 1
            lines.append(f"{known[key].name} = {_toml_value(key, value)}")
    if zipped:
        count *= len(next(iter(zipped.values())))
    return "\n".join(lines) + "\n", count


def _shard(path: str, out_dir: str, index: int, parts: int) -> None:
    """One Dask task: shard ``index`` of ``parts`` of the sweep file at ``path``."""
    _aedyn.run(["sweep", path, "--out-dir", out_dir, "--shard", f"{index}/{parts}", "--threads", "1", "--quiet"])


def sweep(
    command: str,
    grid: Dict[str, Any],
    fixed: Optional[Dict[str, Any]] = None,
    zip: Optional[Dict[str, Any]] = None,
    client: Any = None,
    out_dir: Optional[str] = None,
    threads: int = 0,
) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """Runs ``command`` over the Cartesian product of ``grid`` (and the lists of ``zip``, which
    vary together), with ``fixed`` options at every point, as ``aedyn sweep`` does; returns the
    tables ``(points, trajectories)``. Keys are the command's keyword options.

    Without ``client`` the points run here on ``threads`` workers (0: every core). With a
    ``dask.distributed.Client`` each point is a task on the cluster's workers (dask-jobqueue
    gives Slurm, PBS and SGE), which must see ``out_dir``. Each point's result is kept in
    ``out_dir/points/`` (a temporary folder when none is given): a later call with the same
    ``out_dir`` computes only the points it lacks."""
    text, count = _sweep_file(command.replace("_", "-"), grid, fixed or {}, zip or {})
    with tempfile.TemporaryDirectory(prefix="aedyn-sweep-") as scratch:
        folder = os.fspath(out_dir) if out_dir is not None else scratch
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "sweep.toml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        argv = ["sweep", path, "--out-dir", folder, "--quiet", "--json"]
        if client is not None:
            futures = client.map(_shard, [path] * count, [folder] * count, range(count), [count] * count, pure=False)
            client.gather(futures)
            argv.append("--collect")
        else:
            argv += ["--threads", str(threads)]
        summary, files = _aedyn.run(argv, _Progress("sweep"))
    summary = json.loads(summary)
    by_name = {os.path.basename(name): bytes(data) for name, data in files}
    return _frame(by_name["points.csv"], summary), _frame(by_name["trajectories.csv"], summary)


class Model:
    """Equations loaded once: a shipped name (``"vanilla"``), a path, or the source text itself
    (any string with a line break), compiled at construction (through the run-time compiler
    where the binary has no compiled kernel) for ``k`` units and ``activation``. Its ``ode``
    and ``compare`` then run many times without compiling again."""

    def __init__(self, equations: str = "vanilla", k: int = 3, activation: str = "erf"):
        self._folder = None
        if "\n" in equations:
            self._folder = tempfile.TemporaryDirectory(prefix="aedyn-model-")
            path = os.path.join(self._folder.name, "model.ae")
            with open(path, "w", encoding="utf-8") as f:
                f.write(equations)
            equations = path
        self.equations = equations
        self.k = k
        self.activation = activation
        fixed = self._fixed({})
        with tempfile.TemporaryDirectory(prefix="aedyn-") as folder:
            _aedyn.validate(_command_line("ode", fixed, folder))

    def _fixed(self, options: Dict[str, Any]) -> Dict[str, Any]:
        for key in ("equations", "k", "activation"):
            if key in options:
                raise InputError(f"{key} is the model's; make another Model to change it")
        return dict(options, equations=self.equations, k=self.k, activation=self.activation)

    def ode(self, **options: Any) -> pd.DataFrame:
        return ode(**self._fixed(options))

    def compare(self, *, overlaps: bool = False, **options: Any):
        return compare(overlaps=overlaps, **self._fixed(options))

    def __repr__(self) -> str:
        return f"Model({self.equations!r}, k={self.k}, activation={self.activation!r})"


def _document(function, command: str, extra: str = "") -> None:
    lines = [f"Runs ``aedyn {command}`` and returns its table (``df.attrs``: the run's summary).", ""]
    if extra:
        lines += [extra, ""]
    lines.append("Keyword options (the command line's, with underscores):")
    for option in options(command).values():
        default = " (a switch)" if option.switch else (f" [default: {option.default}]" if option.default else "")
        lines.append(f"  {option.keyword}: {option.help}{default}")
    function.__doc__ = "\n".join(lines)


_document(ode, "ode")
_document(compare, "compare", "overlaps=True: also the final decoder overlaps, as a Result.")
_document(sgd, "sgd", "images=N: also N held-out images and their reconstructions, as a Result.")
_document(spectrum, "spectrum", "density=True: also the histogram of the bulk, as a Result.")
_document(reduced_vs_full, "reduced-vs-full", "Returns two tables: (full, reduced).")
