//! Ctrl-C, SIGTERM and SIGHUP on the command line: the run under way stops at its next output
//! time through the same request as Python's Ctrl-C, so its error path removes whatever it
//! staged; a second signal ends the process at once.

use std::sync::atomic::{AtomicI32, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// The first signal received (0: none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// Installs the handlers; without them (registration refused) the signals keep their default
/// action, and the next run removes what this one staged.
pub(crate) fn install() {
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        // SAFETY: the handler only touches atomics and calls `_exit`, all async-signal-safe.
        let _ = unsafe {
            signal_hook::low_level::register(signal, move || {
                if RECEIVED.swap(signal, Ordering::SeqCst) != 0 {
                    signal_hook::low_level::exit(128 + signal);
                }
                ae_runtime::interrupt::request();
            })
        };
    }
}

/// The signal that stopped the run, if one arrived: its name and the conventional exit code
/// (128 + its number).
pub(crate) fn received() -> Option<(&'static str, u8)> {
    let signal = RECEIVED.load(Ordering::SeqCst);
    let name = match signal {
        0 => return None,
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    };
    Some((name, (128 + signal) as u8))
}
