//! Runs whose outputs stay in memory, for the Python package: the files and the JSON summary a
//! command would write are kept instead, and its progress can be read from another thread.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use clap::CommandFactory;

use super::{dispatch, validate, Cli, Command};
use crate::error::RunError;

/// What a captured run produced: each output (the path it would have had, its bytes) and the
/// summary `--json` would have printed.
#[derive(Debug, Default)]
pub struct Captured {
    pub files: Vec<(String, Vec<u8>)>,
    pub summary: Option<serde_json::Value>,
    progress: Option<Arc<ProgressCell>>,
}

/// A captured run's progress: the latest bar's position and length, written by the run's
/// threads and read by the thread that waits for it. One per run, so that runs on several
/// threads do not mix.
#[derive(Debug, Default)]
pub struct ProgressCell {
    position: AtomicU64,
    length: AtomicU64,
}

impl ProgressCell {
    pub(crate) fn set(&self, position: u64, length: u64) {
        self.length.store(length, Ordering::Relaxed);
        self.position.store(position, Ordering::Relaxed);
    }

    /// (position, length) of the latest progress bar (0, 0 before the first).
    pub fn get(&self) -> (u64, u64) {
        (
            self.position.load(Ordering::Relaxed),
            self.length.load(Ordering::Relaxed),
        )
    }
}

thread_local! {
    static CAPTURE: RefCell<Option<Captured>> = const { RefCell::new(None) };
}

/// Keeps `bytes` for `path` when this thread's run is captured; false when it is not.
pub(crate) fn keep_file(path: &str, bytes: &[u8]) -> bool {
    CAPTURE.with(|c| match c.borrow_mut().as_mut() {
        Some(captured) => {
            captured.files.push((path.to_string(), bytes.to_vec()));
            true
        }
        None => false,
    })
}

/// Keeps the JSON summary when this thread's run is captured; false when it is not.
pub(crate) fn keep_summary(value: &serde_json::Value) -> bool {
    CAPTURE.with(|c| match c.borrow_mut().as_mut() {
        Some(captured) => {
            captured.summary = Some(value.clone());
            true
        }
        None => false,
    })
}

/// Whether this thread's run is captured (nothing is written beside its outputs then).
pub(crate) fn active() -> bool {
    CAPTURE.with(|c| c.borrow().is_some())
}

/// Where this thread's captured run reports its progress (none when it is not captured).
pub(crate) fn progress_cell() -> Option<Arc<ProgressCell>> {
    CAPTURE.with(|c| c.borrow().as_ref().and_then(|captured| captured.progress.clone()))
}

/// Parses a command line (without the program name) as the CLI does; bad input is an error.
fn parse(argv: &[String]) -> Result<(Cli, super::provenance::Record), RunError> {
    let (cli, record) = super::parse_argv(argv)?;
    if matches!(cli.command, Command::Reproduce(_)) {
        return Err(RunError::Input(
            "`reproduce` writes a directory: run it from the command line".into(),
        ));
    }
    Ok((cli, record))
}

/// Runs a command line (without the program name) on this thread with its outputs kept in
/// memory, reporting its progress to `progress`. The caller gives the output options
/// (`--out`, ...) as names; nothing is written.
pub fn run_captured(argv: &[String], progress: Arc<ProgressCell>) -> Result<Captured, RunError> {
    let (cli, record) = parse(argv)?;
    run_parsed_captured(&cli.command, &record, progress)
}

/// [`run_captured`] for a command line parsed already (a sweep parses each point's to check it
/// before any runs).
pub(crate) fn run_parsed_captured(
    command: &Command,
    record: &super::provenance::Record,
    progress: Arc<ProgressCell>,
) -> Result<Captured, RunError> {
    CAPTURE.with(|c| {
        *c.borrow_mut() = Some(Captured {
            progress: Some(progress),
            ..Captured::default()
        })
    });
    let result = dispatch(command, record);
    let captured = CAPTURE.with(|c| c.borrow_mut().take()).unwrap_or_default();
    result.map(|()| captured)
}

/// Checks a command line as a run would before starting (parsing, every value, the equations
/// loaded and compiled), without running it.
pub fn validate_argv(argv: &[String]) -> Result<(), RunError> {
    let (cli, _) = parse(argv)?;
    validate(&cli.command).map(|_| ())
}

/// One option of a subcommand, as `--help` describes it.
#[derive(Debug, Clone)]
pub struct OptionHelp {
    /// The long name, without dashes (`t-end`).
    pub name: String,
    pub help: String,
    /// The default the command line fills in, if any.
    pub default: Option<String>,
    /// Whether the option is a switch (no value).
    pub switch: bool,
}

/// The options of subcommand `command` (none for an unknown one).
pub fn options(command: &str) -> Vec<OptionHelp> {
    super::subcommand_options(&Cli::command(), command)
        .filter_map(|a| {
            Some(OptionHelp {
                name: a.get_long()?.to_string(),
                help: a.get_help().map(|h| h.to_string()).unwrap_or_default(),
                default: a.get_default_values().first().map(|v| v.to_string_lossy().into_owned()),
                switch: !a.get_action().takes_values(),
            })
        })
        .collect()
}

/// Asks the run under way (on any thread) to stop at its next output time; see
/// [`ae_runtime::interrupt`].
pub fn interrupt() {
    ae_runtime::interrupt::request();
}

/// Withdraws an interrupt request, before the next run.
pub fn clear_interrupt() {
    ae_runtime::interrupt::clear();
}
