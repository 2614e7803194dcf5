//! The Python module `aedyn._aedyn`: runs a command line of the CLI in process, its outputs kept
//! in memory, with the GIL released and Ctrl-C honoured; the Python package (aedyn/) turns
//! keyword arguments into that command line and the outputs into DataFrames.

use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aedyn::cli::capture::{self, Captured, ProgressCell};
use aedyn::error::RunError as AedynError;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

pyo3::create_exception!(
    _aedyn,
    InputError,
    PyValueError,
    "Bad input: an option, a value, a file or an array that aedyn refuses (the command line's exit code 2)."
);
pyo3::create_exception!(
    _aedyn,
    RunError,
    PyRuntimeError,
    "A run that failed: a NaN, a step-size collapse, a divergence, memory (the command line's exit code 1)."
);

/// Stack of the thread that runs a command: the equation front end recurses along long sums
/// (the command line's main thread has the same).
const STACK_BYTES: usize = 1 << 30;

/// How often the waiting thread looks for Ctrl-C and reports progress.
const POLL: Duration = Duration::from_millis(100);

fn to_python(e: AedynError) -> PyErr {
    match e {
        AedynError::Input(_) | AedynError::Equations(_) => InputError::new_err(e.to_string()),
        other => RunError::new_err(other.to_string()),
    }
}

/// The summary (JSON text) and the outputs (name, bytes) of one run of `argv`.
type Outcome = (String, Vec<(String, Py<PyBytes>)>);

/// Runs `argv` (a command line without the program name, output options given as names) on a
/// thread of its own while this one waits without the GIL. Every 100 ms it looks for signals:
/// Ctrl-C asks the run to stop at its next output time and raises KeyboardInterrupt (the
/// request reaches every run of the process: it is the process's interrupt); and it calls
/// `on_progress(position, length, seconds)` when given. Runs on several threads at once keep
/// their outputs and progress apart.
#[pyfunction]
#[pyo3(signature = (argv, on_progress=None))]
fn run(py: Python<'_>, argv: Vec<String>, on_progress: Option<Bound<'_, PyAny>>) -> PyResult<Outcome> {
    capture::clear_interrupt();
    let progress = Arc::new(ProgressCell::default());
    let cell = progress.clone();
    let (sender, receiver) = channel();
    // Waiting happens without the GIL, on a reference that must be Send: the receiver behind a
    // lock (only this thread ever takes it).
    let receiver = std::sync::Mutex::new(receiver);
    let wait = |timeout: Option<Duration>| {
        let receiver = receiver.lock().unwrap_or_else(|e| e.into_inner());
        match timeout {
            Some(timeout) => receiver.recv_timeout(timeout),
            None => receiver.recv().map_err(|_| RecvTimeoutError::Disconnected),
        }
    };
    let worker = std::thread::Builder::new()
        .name("aedyn".into())
        .stack_size(STACK_BYTES)
        .spawn(move || {
            let _ = sender.send(capture::run_captured(&argv, cell));
        })
        .map_err(|e| RunError::new_err(format!("cannot start the worker thread: {e}")))?;
    let start = Instant::now();
    let stop = |py: Python<'_>, err: PyErr| -> PyResult<Outcome> {
        capture::interrupt();
        let _ = py.detach(|| wait(None));
        capture::clear_interrupt();
        Err(err)
    };
    let result = loop {
        match py.detach(|| wait(Some(POLL))) {
            Ok(result) => break Some(result),
            Err(RecvTimeoutError::Disconnected) => break None,
            Err(RecvTimeoutError::Timeout) => {}
        }
        if let Err(e) = py.check_signals() {
            return stop(py, e);
        }
        if let Some(callback) = &on_progress {
            let (position, length) = progress.get();
            if let Err(e) = callback.call1((position, length, start.elapsed().as_secs_f64())) {
                return stop(py, e);
            }
        }
    };
    let joined = py.detach(|| worker.join());
    let captured: Captured = match (result, joined) {
        (Some(result), _) => result.map_err(to_python)?,
        (None, Err(panic)) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            return Err(RunError::new_err(format!(
                "internal error (a bug; please report it): {message}"
            )));
        }
        (None, Ok(())) => return Err(RunError::new_err("internal error: the run ended without a result")),
    };
    let summary = captured.summary.map(|v| v.to_string()).unwrap_or_else(|| "{}".into());
    let files = captured
        .files
        .into_iter()
        .map(|(name, bytes)| (name, PyBytes::new(py, &bytes).unbind()))
        .collect();
    Ok((summary, files))
}

/// Checks `argv` as a run would before starting (every value; the equations loaded and
/// compiled, and kept compiled for the process), without running it.
#[pyfunction]
fn validate(py: Python<'_>, argv: Vec<String>) -> PyResult<()> {
    py.detach(|| capture::validate_argv(&argv)).map_err(to_python)
}

/// The options of a subcommand: (name, help, default or None, is a switch).
#[pyfunction]
fn options(command: &str) -> Vec<(String, String, Option<String>, bool)> {
    capture::options(command)
        .into_iter()
        .map(|o| (o.name, o.help, o.default, o.switch))
        .collect()
}

#[pymodule]
fn _aedyn(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(validate, m)?)?;
    m.add_function(wrap_pyfunction!(options, m)?)?;
    m.add("InputError", m.py().get_type::<InputError>())?;
    m.add("RunError", m.py().get_type::<RunError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
