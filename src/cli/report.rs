//! What the subcommands say besides their numbers: progress bars, messages and JSON summaries,
//! and writing output whole or not at all.

use std::io::Write;
use std::path::PathBuf;

use crate::error::input;
use crate::error::RunError;
use crate::run::OdeJob;

/// A progress bar on stderr that appears only once a run has lasted a second (or the seconds
/// in `AEDYN_PROGRESS_AFTER`, which the tests set to 0 so that a short run is enough to show
/// it), and never with --quiet or when stderr is not a terminal (indicatif hides it then).
pub(crate) struct Progress {
    pub(crate) bar: indicatif::ProgressBar,
    start: std::time::Instant,
    after_seconds: f64,
    quiet: bool,
    /// Where a captured run (Python) reports its progress.
    cell: Option<std::sync::Arc<super::capture::ProgressCell>>,
}

impl Progress {
    pub(crate) fn new(quiet: bool, len: u64, what: &str) -> Progress {
        let bar = indicatif::ProgressBar::with_draw_target(Some(len), indicatif::ProgressDrawTarget::hidden());
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{msg:>12} [{bar:40}] {percent:>3}% {elapsed} (eta {eta})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_string());
        let after_seconds = std::env::var("AEDYN_PROGRESS_AFTER")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(1.0);
        Progress {
            bar,
            start: std::time::Instant::now(),
            after_seconds,
            quiet,
            cell: super::capture::progress_cell(),
        }
    }

    fn show_if_slow(&self) {
        if !self.quiet && self.bar.is_hidden() && self.start.elapsed().as_secs_f64() >= self.after_seconds {
            self.bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
    }

    pub(crate) fn set(&self, pos: u64) {
        self.show_if_slow();
        self.bar.set_position(pos);
        self.report();
    }

    pub(crate) fn inc(&self, n: u64) {
        self.show_if_slow();
        self.bar.inc(n);
        self.report();
    }

    fn report(&self) {
        if let Some(cell) = &self.cell {
            cell.set(self.bar.position(), self.bar.length().unwrap_or(0));
        }
    }

    /// Position of time t on a log scale from `t_min` to `t_end`, out of 1000.
    pub(crate) fn log_position(t: f64, t_min: f64, t_end: f64) -> u64 {
        if t <= t_min {
            return 0;
        }
        (1000.0 * (t / t_min).ln() / (t_end / t_min).ln()).clamp(0.0, 1000.0) as u64
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// With --json the summary takes standard output, so the CSV must go to a file.
pub(crate) fn check_json(json: bool, out: &Option<String>) -> Result<(), RunError> {
    if json && out.is_none() {
        return input("--json prints the summary on standard output: give --out for the CSV");
    }
    Ok(())
}

pub(crate) fn print_json(json: bool, value: serde_json::Value) -> Result<(), RunError> {
    if json && !super::capture::keep_summary(&value) {
        say(&value.to_string())?;
    }
    Ok(())
}

/// Set by the binary before Rust's runtime starts, when descriptor 1 was closed: the runtime
/// then reopens it on /dev/null, where everything written would vanish without an error.
static STANDARD_OUTPUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records that standard output was closed when the process started (see `src/main.rs`).
pub fn note_closed_standard_output() {
    STANDARD_OUTPUT_CLOSED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// An error if standard output was closed at the start, before anything is written to it.
fn standard_output_open() -> Result<(), RunError> {
    if STANDARD_OUTPUT_CLOSED.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(RunError::Io(
            "cannot write to standard output: it was closed when aedyn started".into(),
        ));
    }
    Ok(())
}

/// One line on standard output; a closed or full output is an error, not a panic.
pub(crate) fn say(line: &str) -> Result<(), RunError> {
    use std::io::Write;
    standard_output_open()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|_| out.flush())
        .map_err(|e| RunError::Io(format!("cannot write to standard output: {e}")))
}

/// One line on stderr about the real data a run uses.
pub(crate) fn report_data(job: &OdeJob) {
    if let Some(line) = job.source.summary() {
        note!("{line}");
    }
}

/// Writes `buf` to `path` whole or not at all: into a temporary file beside it, flushed to
/// disk, then renamed over it, so that a full disk or an interrupted run never leaves a cut-off
/// file that looks valid (or destroys the old one). A path that exists and is not a regular
/// file (`/dev/null`, a pipe) is written directly: renaming over it would replace it.
pub(crate) fn write_atomically(path: &str, buf: &[u8]) -> std::io::Result<()> {
    write_replacing(path, buf, true)
}

/// `write_atomically` without waiting for the disk: whole or not at all for the processes that
/// read it, but a crash of the machine may lose it. For files whose reader checks them (a
/// sweep's points carry their CSV's hash), where a sync per file would cost more than a point.
pub(crate) fn write_unsynced(path: &str, buf: &[u8]) -> std::io::Result<()> {
    write_replacing(path, buf, false)
}

fn write_replacing(path: &str, buf: &[u8], sync: bool) -> std::io::Result<()> {
    let target = std::path::Path::new(path);
    let Some(temporary) = write_beside(target, buf, sync)? else {
        return Ok(());
    };
    std::fs::rename(&temporary, target).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

/// Writes `buf` whole into a temporary file beside `target` (flushed to disk if `sync`) and
/// returns it, for the caller to rename over `target`. A target that exists and is not a
/// regular file (`/dev/null`, a pipe) is written directly (None): renaming over it would
/// replace it.
fn write_beside(target: &std::path::Path, buf: &[u8], sync: bool) -> std::io::Result<Option<PathBuf>> {
    if target.metadata().is_ok_and(|m| !m.is_file()) {
        return std::fs::write(target, buf).map(|_| None);
    }
    let name = target
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let temporary = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let written = std::fs::File::create(&temporary)
        .and_then(|mut f| f.write_all(buf).and_then(|_| if sync { f.sync_all() } else { Ok(()) }));
    match written {
        Ok(()) => Ok(Some(temporary)),
        Err(e) => {
            let _ = std::fs::remove_file(&temporary);
            Err(e)
        }
    }
}

/// Outputs written in full beside their targets, to be renamed into place once the command has
/// succeeded (its summary printed too), or removed if it fails: (thread, temporary, target).
static PENDING: std::sync::Mutex<Vec<(std::thread::ThreadId, PathBuf, PathBuf)>> = std::sync::Mutex::new(Vec::new());

fn pending() -> std::sync::MutexGuard<'static, Vec<(std::thread::ThreadId, PathBuf, PathBuf)>> {
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes `buf` in full into a temporary file beside `path`, flushed to disk, to be moved into
/// place by `commit_outputs`: a command's outputs appear all together or not at all. A path
/// that exists and is not a regular file is written directly, as in `write_atomically`.
pub(crate) fn stage_output(path: &str, buf: &[u8]) -> std::io::Result<()> {
    let target = std::path::Path::new(path);
    if let Some(temporary) = write_beside(target, buf, true)? {
        pending().push((std::thread::current().id(), temporary, target.to_path_buf()));
    }
    Ok(())
}

/// Moves this thread's staged outputs into place, in the order they were written.
pub(crate) fn commit_outputs() -> Result<(), RunError> {
    let me = std::thread::current().id();
    let mine: Vec<_> = {
        let mut all = pending();
        let (mine, others) = all.drain(..).partition(|(thread, _, _)| *thread == me);
        *all = others;
        mine
    };
    let mut failure = None;
    for (_, temporary, target) in mine {
        if failure.is_some() {
            let _ = std::fs::remove_file(&temporary);
        } else if let Err(e) = std::fs::rename(&temporary, &target) {
            let _ = std::fs::remove_file(&temporary);
            failure = Some(RunError::Io(format!("cannot write {}: {e}", target.display())));
        }
    }
    failure.map_or(Ok(()), Err)
}

/// Removes this thread's staged outputs (its command failed), or every thread's (`all`, when
/// the process ends on a signal).
pub(crate) fn discard_outputs(all: bool) {
    let me = std::thread::current().id();
    pending().retain(|(thread, temporary, _)| {
        let drop = all || *thread == me;
        if drop {
            let _ = std::fs::remove_file(temporary);
        }
        !drop
    });
}

pub(crate) fn write_output(out: &Option<String>, buf: &[u8]) -> Result<(), RunError> {
    if super::capture::keep_file(out.as_deref().unwrap_or("-"), buf) {
        return Ok(());
    }
    match out {
        Some(path) => stage_output(path, buf).map_err(|e| RunError::Io(format!("cannot write {path}: {e}"))),
        None => standard_output_open().and_then(|()| {
            std::io::stdout()
                .write_all(buf)
                .map_err(|e| RunError::Io(e.to_string()))
        }),
    }
}
