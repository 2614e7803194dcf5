//! The application's one error type: bad input (the command line exits with code 2) or a run
//! that failed (exit code 1), and the one helper that turns a message into bad input.

use ae_runtime::ode::IntegrationError;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad input: the CLI exits with code 2.
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Equations(#[from] ae_dsl::Error),
    #[error("integration failed: {0}")]
    Integration(#[from] IntegrationError),
    /// The simulation left the finite numbers (exit code 1, like a failed integration).
    #[error("{0}")]
    Diverged(String),
    #[error("{0}")]
    Io(String),
    /// Some of a sweep's points failed or are missing (exit code 1).
    #[error("{0}")]
    Incomplete(String),
    /// Stopped on request (Ctrl-C in Python), before anything was written.
    #[error("interrupted")]
    Interrupted,
}

/// Bad input, as the error a job returns: one line naming the option or key and what is wrong.
pub fn input<T>(msg: impl Into<String>) -> Result<T, RunError> {
    Err(RunError::Input(msg.into()))
}

impl From<std::io::Error> for RunError {
    fn from(e: std::io::Error) -> Self {
        RunError::Io(e.to_string())
    }
}
