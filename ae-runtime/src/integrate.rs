//! Adaptive integration (ode_solvers' Dop853 or Dopri5) with output at chosen times and guards:
//! a non-finite value or a collapsing step stops the run with an error naming the state and t.

use std::cell::Cell;

use ode_solvers::{DVector, Dop853, Dopri5, OutputType, System};

use crate::kernel::Kernel;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Dormand-Prince 8(5,3), the default.
    Dop853,
    /// Dormand-Prince 5(4).
    Dopri5,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Solver {
    pub method: Method,
    pub rtol: f64,
    pub atol: f64,
    /// Steps allowed between two output times.
    pub max_steps: u32,
}

impl Default for Solver {
    fn default() -> Self {
        Solver {
            method: Method::Dop853,
            rtol: 1e-10,
            atol: 1e-12,
            max_steps: 1_000_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IntegrationError {
    #[error("{quantity} became {value} at t = {t:.6e}")]
    NonFinite { quantity: String, value: f64, t: f64 },
    #[error("the step size collapsed at t = {t:.6e}; fastest-changing state: {state} (value {value:.6e}, derivative {derivative:.6e})")]
    StepCollapse {
        t: f64,
        state: String,
        value: f64,
        derivative: f64,
    },
    #[error("more than {steps} steps between t = {from:.6e} and t = {to:.6e} (the problem may be stiff); stopped at t = {t:.6e}")]
    TooManySteps { steps: u32, from: f64, to: f64, t: f64 },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub evaluations: u64,
    pub accepted: u64,
    pub rejected: u64,
}

/// States and observables at the requested times.
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    pub times: Vec<f64>,
    pub states: Vec<Vec<f64>>,
    pub observables: Vec<Vec<f64>>,
    pub stats: Stats,
}

struct Sys<'a> {
    kernel: &'a dyn Kernel,
    /// First non-finite derivative seen: (index, t, value).
    bad_derivative: Cell<Option<(usize, f64, f64)>>,
    /// First non-finite state after an accepted step.
    bad_state: Option<(usize, f64, f64)>,
}

impl System<f64, DVector<f64>> for Sys<'_> {
    fn system(&self, t: f64, y: &DVector<f64>, dy: &mut DVector<f64>) {
        self.kernel.rhs(y.as_slice(), dy.as_mut_slice());
        if self.bad_derivative.get().is_none() {
            if let Some(i) = dy.iter().position(|v| !v.is_finite()) {
                self.bad_derivative.set(Some((i, t, dy[i])));
            }
        }
    }
    fn solout(&mut self, t: f64, y: &DVector<f64>, _dy: &DVector<f64>) -> bool {
        if let Some(i) = y.iter().position(|v| !v.is_finite()) {
            self.bad_state = Some((i, t, y[i]));
            return true;
        }
        false
    }
}

/// The steppers take their system by value; lending it keeps the guard records readable after.
impl System<f64, DVector<f64>> for &mut Sys<'_> {
    fn system(&self, t: f64, y: &DVector<f64>, dy: &mut DVector<f64>) {
        (**self).system(t, y, dy)
    }
    fn solout(&mut self, t: f64, y: &DVector<f64>, dy: &DVector<f64>) -> bool {
        (**self).solout(t, y, dy)
    }
}

/// `n` times from `t_min` to `t_end`, evenly spaced in log t, preceded by t = 0.
pub fn log_times(t_min: f64, t_end: f64, n: usize) -> Vec<f64> {
    let mut times = vec![0.0];
    if n == 1 {
        times.push(t_end);
        return times;
    }
    let (a, b) = (t_min.ln(), t_end.ln());
    for i in 0..n {
        let t = if i + 1 == n { t_end } else { (a + (b - a) * i as f64 / (n - 1) as f64).exp() };
        times.push(t);
    }
    times
}

/// Integrates from `times[0]` through every later time; `names` name the state entries (for
/// errors); `progress` is called with each output time reached.
pub fn integrate(
    kernel: &dyn Kernel,
    names: &[String],
    y0: Vec<f64>,
    times: &[f64],
    solver: &Solver,
    n_observables: usize,
    mut progress: impl FnMut(f64),
) -> Result<Trajectory, IntegrationError> {
    let mut y = DVector::from_vec(y0);
    let mut traj = Trajectory {
        times: vec![],
        states: vec![],
        observables: vec![],
        stats: Stats::default(),
    };
    let name = |i: usize| names.get(i).cloned().unwrap_or_else(|| format!("y[{i}]"));
    let record = |t: f64, y: &DVector<f64>, traj: &mut Trajectory| -> Result<(), IntegrationError> {
        let mut obs = vec![0.0; n_observables];
        kernel.observe(y.as_slice(), &mut obs);
        traj.times.push(t);
        traj.states.push(y.as_slice().to_vec());
        traj.observables.push(obs);
        Ok(())
    };
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(IntegrationError::NonFinite {
            quantity: format!("initial state {}", name(i)),
            value: y[i],
            t: times.first().copied().unwrap_or(0.0),
        });
    }
    record(times[0], &y, &mut traj)?;
    for w in times.windows(2) {
        let (from, to) = (w[0], w[1]);
        if to <= from {
            continue;
        }
        let mut sys = Sys {
            kernel,
            bad_derivative: Cell::new(None),
            bad_state: None,
        };
        let result = run_segment(&mut sys, from, to, y.clone(), solver);
        let (outcome, end_state, stats) = result;
        traj.stats.evaluations += u64::from(stats.0);
        traj.stats.accepted += u64::from(stats.1);
        traj.stats.rejected += u64::from(stats.2);
        if let Some((i, t, value)) = sys.bad_state {
            return Err(IntegrationError::NonFinite {
                quantity: format!("state {}", name(i)),
                value,
                t,
            });
        }
        match outcome {
            Ok(()) => {}
            Err(ode_solvers::dop_shared::IntegrationError::StepSizeUnderflow { x }) => {
                if let Some((i, t, value)) = sys.bad_derivative.get() {
                    return Err(IntegrationError::NonFinite {
                        quantity: format!("d{}/dt", name(i)),
                        value,
                        t,
                    });
                }
                let last = end_state.unwrap_or_else(|| y.clone());
                let mut dy = DVector::zeros(last.len());
                kernel.rhs(last.as_slice(), dy.as_mut_slice());
                let scale = |i: usize| solver.atol + solver.rtol * last[i].abs();
                let i = (0..last.len())
                    .max_by(|a, b| (dy[*a].abs() / scale(*a)).total_cmp(&(dy[*b].abs() / scale(*b))))
                    .unwrap_or(0);
                return Err(IntegrationError::StepCollapse {
                    t: x,
                    state: name(i),
                    value: last[i],
                    derivative: dy[i],
                });
            }
            Err(ode_solvers::dop_shared::IntegrationError::MaxNumStepReached { x, .. })
            | Err(ode_solvers::dop_shared::IntegrationError::StiffnessDetected { x }) => {
                if let Some((i, t, value)) = sys.bad_derivative.get() {
                    return Err(IntegrationError::NonFinite {
                        quantity: format!("d{}/dt", name(i)),
                        value,
                        t,
                    });
                }
                return Err(IntegrationError::TooManySteps {
                    steps: solver.max_steps,
                    from,
                    to,
                    t: x,
                });
            }
        }
        y = end_state.expect("a successful segment has a final state");
        record(to, &y, &mut traj)?;
        progress(to);
    }
    Ok(traj)
}

type SegmentOutcome = (
    Result<(), ode_solvers::dop_shared::IntegrationError>,
    Option<DVector<f64>>,
    (u32, u32, u32),
);

fn run_segment(sys: &mut Sys, from: f64, to: f64, y: DVector<f64>, solver: &Solver) -> SegmentOutcome {
    // Stiffness detection is off (n_stiff = u32::MAX): a long run legitimately goes through
    // stiff stretches, and TooManySteps reports it if it matters.
    macro_rules! run {
        ($stepper:ident, $beta:expr) => {{
            let mut stepper = $stepper::from_param(
                &mut *sys,
                from,
                to,
                to - from,
                y,
                solver.rtol,
                solver.atol,
                0.9,
                $beta,
                0.333,
                6.0,
                to - from,
                0.0,
                solver.max_steps,
                u32::MAX,
                OutputType::Sparse,
            );
            let res = stepper.integrate();
            let last = stepper.y_out().last().cloned();
            match res {
                Ok(s) => (Ok(()), last, (s.num_eval, s.accepted_steps, s.rejected_steps)),
                Err(e) => (Err(e), last, (0, 0, 0)),
            }
        }};
    }
    match solver.method {
        Method::Dop853 => run!(Dop853, 0.0),
        Method::Dopri5 => run!(Dopri5, 0.04),
    }
}
