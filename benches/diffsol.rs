//! Stiff solvers side by side on the default `ode` run (vanilla K = 3, erf, spikes 9,3,1,
//! D = 1000, t = 0..1000 at the 101 default output times): the default `auto` (diffsol's BDF
//! through ae-runtime), the own Rodas4, and diffsol's BDF, ESDIRK34 and TR-BDF2 called
//! directly (dense nalgebra LU, the generated symbolic Jacobian). For each, the best of five
//! wall times and the worst relative eg error over the outputs against dop853 at rtol 1e-13.
//! Run: `cargo bench --bench diffsol` (README, "Integration").

use std::cell::RefCell;
use std::time::Instant;

use ae_core::averages::ActivationKind;
use ae_core::kernel::Kernel;
use ae_runtime::data::Dim;
use ae_runtime::ode::{Method, Solver};
use aedyn::run::OdeJob;
use aedyn::source::DataSource;
use diffsol::{NalgebraLU, NalgebraMat, OdeBuilder, OdeSolverMethod};

type M = NalgebraMat<f64>;
type LS = NalgebraLU<f64>;

/// The best of five wall times of `run`, in ms, and its last result.
fn best_of_five<T>(mut run: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..5 {
        let start = Instant::now();
        let out = run();
        best = best.min(start.elapsed().as_secs_f64() * 1e3);
        last = Some(out);
    }
    (best, last.expect("five runs"))
}

fn worst_relative_error(eg: &[f64], reference: &[f64]) -> f64 {
    eg.iter()
        .zip(reference)
        .map(|(a, b)| ((a - b) / b).abs())
        .fold(0.0, f64::max)
}

/// eg at `times` by one of diffsol's methods, with the kernel's right-hand side and its exact
/// Jacobian (diffsol asks for Jacobian-vector products; the Jacobian is formed once per state
/// and reused for every product at that state, so each of diffsol's Jacobian setups costs one
/// evaluation, as in Rodas4).
/// Where to read eg: its column among `observables` columns.
struct Eg {
    column: usize,
    observables: usize,
}

fn diffsol_eg(
    kernel: &dyn Kernel,
    y0: &[f64],
    times: &[f64],
    rtol: f64,
    atol: f64,
    method: &str,
    eg: &Eg,
) -> (Vec<f64>, usize) {
    let n = y0.len();
    let cache = RefCell::new((vec![f64::NAN; n], vec![0.0; n * n]));
    let problem = OdeBuilder::<M>::new()
        .t0(times[0])
        .rtol(rtol)
        .atol([atol])
        .rhs_implicit(
            |x: &[f64], _p: &[f64], _t: f64, y: &mut [f64]| kernel.rhs(x, y),
            |x: &[f64], _p: &[f64], _t: f64, v: &[f64], y: &mut [f64]| {
                let mut c = cache.borrow_mut();
                let (at, jac) = &mut *c;
                if at.as_slice() != x {
                    assert!(kernel.jacobian(x, jac), "the generated kernel has a Jacobian");
                    at.copy_from_slice(x);
                }
                // Column-major: y_i = sum_j J[j n + i] v_j.
                y.iter_mut().for_each(|yi| *yi = 0.0);
                for (column, vj) in jac.chunks_exact(n).zip(v) {
                    for (yi, jij) in y.iter_mut().zip(column) {
                        *yi += jij * vj;
                    }
                }
            },
        )
        .init(|_p: &[f64], _t: f64, y: &mut [f64]| y.copy_from_slice(y0), n)
        .build()
        .expect("a well-formed problem");
    let (states, steps) = match method {
        "bdf" => {
            let mut s = problem.bdf::<LS>().expect("bdf");
            let out = s.solve_dense(times).expect("bdf solves").0;
            (out, s.get_statistics().number_of_steps)
        }
        "esdirk34" => {
            let mut s = problem.esdirk34::<LS>().expect("esdirk34");
            let out = s.solve_dense(times).expect("esdirk34 solves").0;
            (out, s.get_statistics().number_of_steps)
        }
        _ => {
            let mut s = problem.tr_bdf2::<LS>().expect("tr_bdf2");
            let out = s.solve_dense(times).expect("tr_bdf2 solves").0;
            (out, s.get_statistics().number_of_steps)
        }
    };
    let mut observed = vec![0.0; eg.observables];
    let mut y = vec![0.0; n];
    let egs = (0..times.len())
        .map(|col| {
            for (i, yi) in y.iter_mut().enumerate() {
                *yi = states[(i, col)];
            }
            kernel.observe(&y, &mut observed);
            observed[eg.column]
        })
        .collect();
    (egs, steps)
}

fn main() {
    let source = DataSource::spiked(Dim::Finite(1000), &[9.0, 3.0, 1.0], 1.0, 0);
    let job = OdeJob::new("vanilla", 3, ActivationKind::Erf, source);
    let handle = job.load().expect("the shipped equations load");
    let eg = handle.require_eg("bench").expect("vanilla observes eg");
    let columns = Eg {
        column: eg,
        observables: handle.observable_names.len(),
    };
    let with = |method: Method, rtol: f64, atol: f64| {
        let mut j = job.clone();
        j.solver = Solver {
            method,
            rtol,
            atol,
            ..Solver::default()
        };
        j
    };
    let eg_of = |run: &aedyn::run::OdeRun| run.trajectory.observables.iter().map(|o| o[eg]).collect::<Vec<f64>>();
    let reference = with(Method::Dop853, 1e-13, 1e-15).run(|_| {}).expect("reference run");
    let reference_eg = eg_of(&reference);
    let y0 = reference.trajectory.states[0].clone();
    let times = job.times.clone();

    println!(
        "vanilla K=3 erf, spikes 9,3,1, D=1000, t = 0..1000, {} outputs",
        times.len()
    );
    println!(
        "{:<34} {:>8} {:>10} {:>7} {:>12}",
        "method", "rtol", "time (ms)", "steps", "eg error"
    );
    for rtol in [1e-6, 1e-7, 1e-8] {
        for (name, method) in [
            ("auto (bdf, symbolic J)", Method::Auto),
            ("rodas4 (own, symbolic J)", Method::Rodas4),
        ] {
            let own = with(method, rtol, 1e-10);
            let (ms, run) = best_of_five(|| own.run(|_| {}).expect("own run"));
            let steps = run.trajectory.stats.stiff_accepted;
            let error = worst_relative_error(&eg_of(&run), &reference_eg);
            println!("{name:<34} {rtol:>8.0e} {ms:>10.2} {steps:>7} {error:>12.1e}");
        }
        for method in ["bdf", "esdirk34", "tr_bdf2"] {
            let (ms, (egs, steps)) =
                best_of_five(|| diffsol_eg(handle.kernel.as_ref(), &y0, &times, rtol, 1e-10, method, &columns));
            let error = worst_relative_error(&egs, &reference_eg);
            println!(
                "{:<34} {:>8.0e} {:>10.2} {:>7} {:>12.1e}",
                format!("diffsol {method} (nalgebra LU)"),
                rtol,
                ms,
                steps,
                error
            );
        }
    }
}
