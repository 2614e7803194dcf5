//! Ctrl-C, SIGTERM and SIGHUP on the command line: the run under way stops at its next output
//! time through the same request as Python's Ctrl-C, so its error path removes whatever it
//! staged. A run that does not get there within a grace period (blocked reading a pipe, say),
//! and a second signal, end the process from the signal thread, after it removes the staged
//! folders itself.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// How long a run has to stop by itself: output times and SGD chunks come far more often.
const GRACE: Duration = Duration::from_secs(2);

/// The first signal received (0: none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// Folders to remove if the process ends from the signal thread (see `Staged`).
static STAGED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Installs the handling thread; without it (registration refused) the signals keep their
/// default action, and the next run removes what this one staged.
pub(crate) fn install() {
    let Ok(mut signals) = Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    let _ = std::thread::Builder::new().name("signals".into()).spawn(move || {
        let Some(signal) = signals.forever().next() else {
            return;
        };
        RECEIVED.store(signal, Ordering::SeqCst);
        ae_runtime::interrupt::request();
        let start = Instant::now();
        // The run's own error path ends the process (and this thread) if it stops in time.
        while start.elapsed() < GRACE && signals.pending().next().is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
        for folder in STAGED.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = std::fs::remove_dir_all(folder);
        }
        super::report::discard_outputs(true);
        note!("{}", stopped_by(name(signal)));
        std::process::exit(128 + signal);
    });
}

/// A folder that the signal thread removes should it end the process; dropping the guard
/// takes the folder off the list (once it is moved into place or removed).
pub(crate) struct Staged(PathBuf);

impl Staged {
    pub(crate) fn new(folder: PathBuf) -> Staged {
        STAGED.lock().unwrap_or_else(|e| e.into_inner()).push(folder.clone());
        Staged(folder)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        STAGED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|f| *f != self.0);
    }
}

fn name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// The one line a run stopped by `signal` ends with, wherever it ends.
pub(crate) fn stopped_by(signal: &str) -> String {
    format!("error: stopped by {signal}; no output was written (a sweep keeps the points it finished)")
}

/// The signal that stopped the run, if one arrived: its name and the conventional exit code
/// (128 + its number).
pub(crate) fn received() -> Option<(&'static str, u8)> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        signal => Some((name(signal), (128 + signal) as u8)),
    }
}
