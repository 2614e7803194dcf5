//! Text inputs read whole (equation, experiment, sweep and weight files): regular files only,
//! since a FIFO without a writer would block forever, with a UTF-8 byte-order mark skipped as
//! in data files.

use crate::error::{input, RunError};

/// The text of `path`, which `what` names in errors (`equation file`, `--weights`).
pub fn read_text(path: &str, what: &str) -> Result<String, RunError> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => {
            return input(format!(
                "cannot read {what} {path}: not a regular file ({what} is read whole, not streamed)"
            ))
        }
        Err(e) => return input(format!("cannot read {what} {path}: {e}")),
        Ok(_) => {}
    }
    let text = std::fs::read_to_string(path).map_err(|e| RunError::Input(format!("cannot read {what} {path}: {e}")))?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}
