"""The Python package against the command line: the same numbers, the same errors, and what a
notebook needs (threads, Ctrl-C, one compilation per model, plots, the example)."""

import _thread
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import aedyn

ROOT = Path(__file__).resolve().parents[2]
BINARY = os.environ.get("AEDYN_BIN", str(ROOT / "target" / "debug" / "aedyn"))


def cli(*args):
    """Runs the command line: (exit code, stderr)."""
    done = subprocess.run([BINARY, *args], capture_output=True, text=True, cwd=ROOT)
    return done.returncode, done.stderr


def cli_tables(command, args, outputs):
    """The CSV tables the command line writes for `args`, read as pandas reads the package's."""
    with tempfile.TemporaryDirectory() as folder:
        paths = {name: os.path.join(folder, name) for name in outputs.values()}
        extra = []
        for option, name in outputs.items():
            extra += [f"--{option}", paths[name] if option != "out-prefix" else os.path.join(folder, "p")]
        code, err = cli(command, *args, *extra, "--quiet")
        assert code == 0, err
        if "out-prefix" in outputs:
            return [pd.read_csv(os.path.join(folder, f"p_{s}.csv")) for s in ("full", "reduced")]
        return [pd.read_csv(paths[name]) for name in outputs.values()]


def same(frame, other):
    # Equal numbers from equal text: the package returns the bytes the command line writes.
    pd.testing.assert_frame_equal(frame, other, check_exact=True)


def test_every_command_equals_the_command_line_bit_for_bit():
    same(
        aedyn.ode(k=2, activation="relu", t_end=20, points=10, spikes=[5, 2]),
        cli_tables("ode", ["--k", "2", "--activation", "relu", "--t-end", "20", "--points", "10", "--spikes", "5,2"], {"out": "o.csv"})[0],
    )
    run = aedyn.compare(k=2, d=150, t_end=3, points=5, seeds=2, lr=0.5, overlaps=True)
    main, overlaps = cli_tables(
        "compare",
        ["--k", "2", "--d", "150", "--t-end", "3", "--points", "5", "--seeds", "2", "--lr", "0.5"],
        {"out": "c.csv", "overlaps": "v.csv"},
    )
    same(run.main, main)
    same(run.overlaps, overlaps)
    same(
        aedyn.sgd(k=2, d=150, t_end=3, points=5, seeds=2, rule="truncated"),
        cli_tables("sgd", ["--k", "2", "--d", "150", "--t-end", "3", "--points", "5", "--seeds", "2", "--rule", "truncated"], {"out": "s.csv"})[0],
    )
    spectrum = aedyn.spectrum(d=100, samples=400, density=True)
    main, density = cli_tables("spectrum", ["--d", "100", "--samples", "400"], {"out": "p.csv", "density": "h.csv"})
    same(spectrum.main, main)
    same(spectrum.density, density)
    full, reduced = aedyn.reduced_vs_full(k=1, spikes=[4], t_end=1e4)
    cli_full, cli_reduced = cli_tables("reduced-vs-full", ["--k", "1", "--spikes", "4", "--t-end", "1e4"], {"out-prefix": "p"})
    same(full, cli_full)
    same(reduced, cli_reduced)


def test_the_summary_is_in_attrs_with_every_input():
    df = aedyn.ode(k=2, t_end=5, points=4)
    for key in ("method", "steps", "seconds", "backend", "eg"):
        assert key in df.attrs, key
    inputs = df.attrs["inputs"]
    assert inputs["options"]["k"] == "2"
    assert inputs["options"]["lr"] == "1"  # the command line's default
    assert inputs["version"] == aedyn.__version__


def test_an_array_as_data_is_the_same_samples_as_a_npy_file():
    rng = np.random.default_rng(3)
    samples = rng.normal(size=(400, 16)) * np.linspace(3, 0.5, 16)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "x.npy")
        np.save(path, samples)
        from_file = aedyn.ode(equations="full_spectrum", k=2, data=path, t_end=5, points=5)
    from_array = aedyn.ode(equations="full_spectrum", k=2, data=samples, t_end=5, points=5)
    same(from_array, from_file)


def cli_message(*args):
    code, err = cli(*args)
    assert code == 2, err
    return err.strip().removeprefix("error: ")


@pytest.mark.parametrize(
    "kwargs, args",
    [
        ({"k": 0}, ["--k", "0"]),
        ({"lr": -1}, ["--lr", "-1"]),
        ({"spikes": "9,x"}, ["--spikes", "9,x"]),
        ({"method": "euler"}, ["--method", "euler"]),
        ({"activation": "nope"}, ["--activation", "nope"]),
        ({"t_end": -1.0}, ["--t-end", "-1.0"]),
        ({"d": "many"}, ["--d", "many"]),
        ({"equations": "no/such/file.ae"}, ["--equations", "no/such/file.ae"]),
        ({"rtol": float("nan")}, ["--rtol", "nan"]),
        ({"points": 0}, ["--points", "0"]),
    ],
)
def test_bad_options_raise_input_error_with_the_command_lines_message(kwargs, args):
    with pytest.raises(aedyn.InputError) as caught:
        aedyn.ode(**kwargs)
    assert str(caught.value) == cli_message("ode", *args, "--out", "/tmp/aedyn-never.csv")
    assert isinstance(caught.value, ValueError)


def test_bad_arrays_sources_and_keywords_raise_input_error_naming_them():
    bad = np.ones((20, 4))
    bad[3, 2] = np.nan
    cases = [
        (lambda: aedyn.ode(equations="full_spectrum", data=bad), "data: entry (3, 2) is nan"),
        (lambda: aedyn.ode(equations="full_spectrum", data=np.ones(8)), "data: expected a 2-D array"),
        (lambda: aedyn.ode(weights=(np.ones((3, 10)), np.ones((2, 10)))), "weights (v): expected 3 rows"),
        (lambda: aedyn.ode(weights=np.ones((3, 10))), "weights: expected (w, v)"),
        (lambda: aedyn.ode(no_such_option=1), "unknown option `no_such_option` for ode"),
        (lambda: aedyn.ode(tied=True), "unknown option `tied` for ode"),
        (lambda: aedyn.compare(tied="yes"), "tied is a switch"),
        (lambda: aedyn.Model("equations broken\nstate x[k init 0\n"), "model.ae:2:"),
        (lambda: aedyn.Model("vanilla").ode(k=2), "k is the model's"),
    ]
    for call, needle in cases:
        with pytest.raises(aedyn.InputError) as caught:
            call()
        assert needle in str(caught.value), (needle, str(caught.value))


def test_a_failing_run_raises_run_error():
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "blowup.ae")
        Path(path).write_text("hidden k\nstate x[k] init 1\nd/dt x[k] = x[k]^2\nobserve s = sum(k, x[k])\n")
        with pytest.raises(aedyn.RunError) as caught:
            aedyn.ode(equations=path, k=1, t_end=2)
    assert "t = " in str(caught.value)
    assert isinstance(caught.value, RuntimeError)


def test_other_threads_go_on_while_a_run_goes_on():
    counter = [0]
    done = threading.Event()

    def work():
        aedyn.compare(k=3, d=1000, t_end=30, seeds=2)
        done.set()

    runner = threading.Thread(target=work)
    runner.start()
    while not done.is_set():
        counter[0] += 1
        time.sleep(0.001)
    runner.join()
    # Hundreds of turns in the second or so the run takes: the run holds no GIL.
    assert counter[0] > 50, counter[0]


def test_ctrl_c_stops_a_long_run():
    timer = threading.Timer(0.5, _thread.interrupt_main)
    start = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        aedyn.compare(k=3, d=2000, t_end=3000, seeds=2)
    timer.cancel()
    # The run stops at its next output time: well within a few seconds of the interrupt.
    assert time.monotonic() - start < 5


def test_a_model_compiles_once_and_runs_like_fresh_calls():
    source = (ROOT / "equations" / "vanilla.ae").read_text().replace("omega[", "om[")
    model = aedyn.Model(source, k=2)
    first = model.ode(lr=0.5, t_end=10, points=5)
    second = model.ode(lr=2.0, t_end=10, points=5)
    assert second.attrs["compile_seconds"] == 0.0  # compiled at construction, kept
    same(first, aedyn.ode(equations=model.equations, k=2, lr=0.5, t_end=10, points=5))
    same(second, aedyn.ode(equations=model.equations, k=2, lr=2.0, t_end=10, points=5))


def test_plots_return_their_axes():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from aedyn import plot

    df = aedyn.compare(k=2, d=150, t_end=3, points=5, seeds=2)
    assert plot.eg(df).get_yscale() == "log"
    ax = plot.order_parameters(df)
    assert any("Q_kk, unit 1 (ODE)" == t.get_text() for t in ax.get_legend().get_texts())


def test_the_example_writes_its_png():
    pytest.importorskip("matplotlib")
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "figure2.png")
        done = subprocess.run(
            [sys.executable, str(ROOT / "python" / "examples" / "figure2.py"), out],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert Path(out).read_bytes().startswith(b"\x89PNG")


def test_docstrings_and_stubs_name_every_option():
    for function, command in [(aedyn.ode, "ode"), (aedyn.compare, "compare"), (aedyn.sgd, "sgd")]:
        for keyword in aedyn.options(command):
            assert f"  {keyword}: " in function.__doc__, (command, keyword)
    stubs = (Path(aedyn.__file__).parent / "__init__.pyi").read_text()
    sys.path.insert(0, str(ROOT / "python" / "tools"))
    from make_stubs import stubs as generated

    assert stubs == generated(), "python/aedyn/__init__.pyi is stale: run python python/tools/make_stubs.py"


GRID = {"lr": [0.5, 1.0], "k": [2, 3]}
FIXED = {"d": 100, "t_end": 2, "points": 4, "seeds": 2}


def test_a_sweep_equals_the_command_line_sweep_and_resumes():
    with tempfile.TemporaryDirectory() as folder:
        points, trajectories = aedyn.sweep("compare", GRID, fixed=FIXED, out_dir=folder)
        assert len(points) == 4 and (points.status == "ok").all()
        assert list(points.columns[:2]) == ["lr", "k"]
        again, _ = aedyn.sweep("compare", GRID, fixed=FIXED, out_dir=folder)
        assert again.attrs["skipped"] == 4 and again.attrs["done"] == 0
        Path(folder, "cli.toml").write_text(
            'command = "compare"\n[fixed]\nd = 100\nt-end = 2\npoints = 4\nseeds = 2\n[grid]\nlr = [0.5, 1.0]\nk = [2, 3]\n'
        )
        code, err = cli("sweep", os.path.join(folder, "cli.toml"), "--out-dir", os.path.join(folder, "cli"), "--quiet")
        assert code == 0, err
        same(trajectories, pd.read_csv(os.path.join(folder, "cli", "trajectories.csv")))
        same(points.drop(columns="seconds"), pd.read_csv(os.path.join(folder, "cli", "points.csv")).drop(columns="seconds"))


def test_a_sweep_on_a_dask_cluster_equals_the_serial_run():
    distributed = pytest.importorskip("dask.distributed")
    serial, serial_rows = aedyn.sweep("compare", GRID, fixed=FIXED)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            with tempfile.TemporaryDirectory() as folder:
                points, rows = aedyn.sweep("compare", GRID, fixed=FIXED, client=client, out_dir=folder)
    same(rows, serial_rows)
    same(points.drop(columns="seconds"), serial.drop(columns="seconds"))
