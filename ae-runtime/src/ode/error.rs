//! How a run fails: the errors of every stepper, each naming the quantity and the time.

use ae_core::kernel::Kernel;

use super::Solver;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IntegrationError {
    #[error("interrupted at t = {t:.6e}")]
    Interrupted { t: f64 },
    #[error("{quantity} became {value} at t = {t:.6e}{cause}")]
    NonFinite {
        quantity: String,
        value: f64,
        t: f64,
        /// Where the first non-finite value arose, if it could be found (starts with "; ").
        cause: String,
    },
    #[error("the step size collapsed at t = {t:.6e}; fastest-changing state: {state} (value {value:.6e}, derivative {derivative:.6e})")]
    StepCollapse {
        t: f64,
        state: String,
        value: f64,
        derivative: f64,
    },
    #[error("BDF stopped at t = {t:.6e}: {message}; fastest-changing state: {state} (value {value:.6e}, derivative {derivative:.6e})")]
    BdfFailed {
        t: f64,
        message: String,
        state: String,
        value: f64,
        derivative: f64,
    },
    #[error("more than {steps} steps between t = {from:.6e} and t = {to:.6e} (the problem may be stiff); stopped at t = {t:.6e}")]
    TooManySteps { steps: u32, from: f64, to: f64, t: f64 },
    #[error("{method} is stability-limited at t = {t:.6e} (steps of {h:.3e}): reaching t = {t_end:.6e} would take about {steps:.1e} more steps, beyond the limit of {max_steps}; {hint}")]
    StabilityLimited {
        method: &'static str,
        /// What would finish the run.
        hint: String,
        t: f64,
        h: f64,
        t_end: f64,
        steps: f64,
        max_steps: u32,
    },
    #[error("the state has {len} entries; {method} handles at most {max} (use dop853)")]
    TooLarge {
        len: usize,
        max: usize,
        method: &'static str,
    },
}

/// The state entry that changes fastest relative to its tolerance, which is where to look
/// first when a stepper gives up: (its name, value, derivative).
pub(super) fn fastest_changing(
    kernel: &dyn Kernel,
    last: &[f64],
    solver: &Solver,
    name: &dyn Fn(usize) -> String,
) -> (String, f64, f64) {
    let mut dy = vec![0.0; last.len()];
    kernel.rhs(last, &mut dy);
    let scale = |i: usize| solver.atol + solver.rtol * last[i].abs();
    let i = (0..last.len())
        .max_by(|a, b| (dy[*a].abs() / scale(*a)).total_cmp(&(dy[*b].abs() / scale(*b))))
        .unwrap_or(0);
    (name(i), last[i], dy[i])
}

/// The error for a collapsed step, naming the fastest-changing state entry.
pub(super) fn step_collapse(
    kernel: &dyn Kernel,
    last: &[f64],
    t: f64,
    solver: &Solver,
    name: &dyn Fn(usize) -> String,
) -> IntegrationError {
    let (state, value, derivative) = fastest_changing(kernel, last, solver, name);
    IntegrationError::StepCollapse {
        t,
        state,
        value,
        derivative,
    }
}

/// The error for a non-finite value a stiff stepper met: state entry `i` (`is_state`) or its
/// derivative, whose `cause` names where the first non-finite value arose.
pub(super) fn non_finite_entry(
    i: usize,
    t: f64,
    value: f64,
    is_state: bool,
    name: &dyn Fn(usize) -> String,
    cause: impl FnOnce() -> String,
) -> IntegrationError {
    let (quantity, cause) = if is_state {
        (format!("state {}", name(i)), String::new())
    } else {
        (format!("d{}/dt", name(i)), cause())
    };
    IntegrationError::NonFinite {
        quantity,
        value,
        t,
        cause,
    }
}

/// The error for a non-finite entry (row, col) of the exact Jacobian.
pub(super) fn non_finite_jacobian(
    row: usize,
    col: usize,
    t: f64,
    value: f64,
    name: &dyn Fn(usize) -> String,
) -> IntegrationError {
    IntegrationError::NonFinite {
        quantity: format!("Jacobian entry d(d{}/dt)/d{}", name(row), name(col)),
        value,
        t,
        cause: String::new(),
    }
}
