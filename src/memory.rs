//! The memory a run may plan to hold, and the check every job makes before it allocates.

use crate::error::{input, RunError};

/// The memory a run may plan to hold, in GB, unless `AEDYN_MAX_MEMORY_GB` says otherwise.
pub const DEFAULT_MAX_MEMORY_GB: f64 = 8.0;

/// The memory limit in bytes: `AEDYN_MAX_MEMORY_GB` (a positive number) or the default.
pub fn memory_limit_bytes() -> Result<f64, RunError> {
    match std::env::var("AEDYN_MAX_MEMORY_GB") {
        Err(_) => Ok(DEFAULT_MAX_MEMORY_GB * 1e9),
        Ok(v) => match v.trim().parse::<f64>() {
            Ok(gb) if gb.is_finite() && gb > 0.0 => Ok(gb * 1e9),
            _ => input(format!(
                "AEDYN_MAX_MEMORY_GB must be a positive number of GB, got `{v}`"
            )),
        },
    }
}

/// Refuses a request whose estimated memory, `bytes`, exceeds the limit; `what` says what it
/// holds.
pub fn check_memory(bytes: f64, what: &str) -> Result<(), RunError> {
    let limit = memory_limit_bytes()?;
    if bytes > limit {
        return input(format!(
            "this run would hold about {:.1} GB ({what}), more than the limit of {:.1} GB (set AEDYN_MAX_MEMORY_GB to allow it)",
            bytes / 1e9,
            limit / 1e9
        ));
    }
    Ok(())
}
