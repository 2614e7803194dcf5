//! The run-time compiler against the generated kernels and the interpreter, side by side in one
//! run: one right-hand side, compile times, and whole integrations of a renamed copy of a
//! shipped file (nothing can recognise it) against the shipped file, and runs with activations
//! by Mehler series (built-in tanh, and ones declared in the file) against erf's closed forms.
//! Run: `cargo bench --bench jit` (`-- quick` leaves out the K = 64 run, 20 s).

mod common;
use common::scratch;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use ae_core::averages::ActivationKind;
use ae_core::kernel::Kernel;
use ae_jit::{JacobianPolicy, JitKernel, Shape};
use ae_runtime::data::Dim;
use aedyn::run::OdeJob;
use aedyn::source::DataSource;

/// A shipped file with its equations and one state renamed, as a user's copy would be.
fn renamed(name: &str) -> (Arc<ae_dsl::Model>, String) {
    let text = aedyn::models::shipped_source(name)
        .unwrap()
        .replace("omega[", "wmode[")
        .replace(&format!("equations {name}"), &format!("equations my_{name}"));
    (Arc::new(ae_dsl::compile("my.ae", &text).unwrap()), text)
}

/// Median seconds of `runs` calls of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[runs / 2]
}

fn one_rhs() {
    let (model, text) = renamed("vanilla");
    let k = 3;
    let rho = vec![9.001, 3.001, 1.001];
    let params = [1.0, 0.0, 0.001, 0.997];
    let n = ae_dsl::layout::Layout::new(&model, k, 3).len;
    let y: Vec<f64> = (0..n).map(|i| 0.1 + 0.05 * (i as f64).sin()).collect();
    let mut kernels: Vec<(&str, Box<dyn Kernel>)> = vec![
        (
            "generated",
            aedyn::models::unrolled("vanilla", k, ActivationKind::Erf).unwrap(),
        ),
        (
            "jit",
            Box::new(JitKernel::new(model.clone(), &text, k, ActivationKind::Erf, Shape::Unrolled).unwrap()),
        ),
        (
            "interpreter",
            Box::new(ae_runtime::interp::Interpreter::new(
                model,
                &text,
                k,
                ActivationKind::Erf,
            )),
        ),
    ];
    let mut dy = vec![0.0; n];
    let mut times = Vec::new();
    for (name, kernel) in &mut kernels {
        kernel.set_rho(rho.clone());
        kernel.params_mut().copy_from_slice(&params);
        let reps = if *name == "interpreter" { 2_000 } else { 200_000 };
        let t = median(5, || {
            for _ in 0..reps {
                kernel.rhs(black_box(&y), &mut dy);
            }
        }) / reps as f64;
        times.push((*name, t));
    }
    println!("one right-hand side, vanilla K = 3 erf, 3 spikes (median of 5 rounds):");
    for (name, t) in &times {
        println!("  {name:<12} {:>9.0} ns  ({:.2}x generated)", t * 1e9, t / times[0].1);
    }
}

fn compile_times() {
    println!("compile times (a fresh source each round, so nothing comes from the cache; median of 7):");
    let rounds = std::sync::atomic::AtomicUsize::new(0);
    let fresh = |name: &str| {
        let (_, text) = renamed(name);
        let r = rounds.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let text = format!("{text}\n# round {r}\n");
        (Arc::new(ae_dsl::compile("my.ae", &text).unwrap()), text)
    };
    for (name, k, shape, jacobian) in [
        ("vanilla", 3, Shape::Unrolled, false),
        ("vanilla", 3, Shape::Unrolled, true),
        ("vanilla", 6, Shape::Unrolled, false),
        ("vanilla", 6, Shape::Unrolled, true),
        ("full_spectrum", 64, Shape::Generic, false),
    ] {
        let t = median(7, || {
            let (model, text) = fresh(name);
            let m = if name == "vanilla" { k } else { 16 };
            let mut kernel = JitKernel::new(model.clone(), &text, k, ActivationKind::Erf, shape)
                .unwrap()
                .with_jacobian_policy(JacobianPolicy::Always);
            if jacobian {
                kernel.set_rho(vec![1.0; m]);
                let n = ae_dsl::layout::Layout::new(&model, k, m).len;
                let (y, mut jac) = (vec![0.1; n], vec![0.0; n * n]);
                assert!(kernel.jacobian(&y, &mut jac));
            }
        });
        let what = if jacobian {
            "rhs + observables + Jacobian"
        } else {
            "rhs + observables"
        };
        println!("  {name} K = {k} {shape:?}: {what}: {:.1} ms", t * 1e3);
    }
}

/// One integration's seconds (median of `runs`) and its final eg.
fn run(job: &OdeJob, runs: usize) -> (f64, f64, String) {
    let mut eg = 0.0;
    let mut backend = String::new();
    let t = median(runs, || {
        // Every round starts with the series' caches empty, as a new process does: a round
        // after the first would otherwise find the expansions and products of the same
        // variances kept (an ELU's run took 106 ms so, against 200-275 ms from the CLI).
        ae_core::mehler::clear_caches();
        let r = job.run(|_| {}).unwrap();
        eg = r.trajectory.observables.last().unwrap()[0];
        backend = format!("{}, {}", r.backend.name(), r.trajectory.stats.describe());
    });
    (t, eg, backend)
}

fn integrations(quick: bool) {
    println!("whole integrations in process, t = 1000 (median of 5; the JIT's include compiling, which the cache would skip after the first run, so each round uses a fresh copy):");
    let own = |name: &str, tag: usize| {
        let path = scratch().join(format!("{tag}.ae"));
        let (_, text) = renamed(name);
        std::fs::write(&path, format!("{text}\n# {tag}\n")).unwrap();
        path.to_string_lossy().into_owned()
    };
    for (k, spikes) in [(3usize, vec![9.0, 3.0, 1.0]), (6, vec![9.0, 8.0, 7.0, 6.0, 5.0, 4.0])] {
        let source = DataSource::spiked(Dim::Finite(1000), &spikes, 1.0, 0);
        let job = |equations: &str| OdeJob::new(equations, k, ActivationKind::Erf, source.clone());
        let shipped = run(&job("vanilla"), 5);
        let generated = run(
            &OdeJob {
                backend: Some(ae_core::kernel::Backend::Generated),
                ..job("vanilla")
            },
            5,
        );
        let mut tag = 0;
        let copy = {
            let mut times = Vec::new();
            let mut eg = 0.0;
            let mut how = String::new();
            for _ in 0..5 {
                tag += 1;
                let (t, e, h) = run(&job(&own("vanilla", 100 * k + tag)), 1);
                times.push(t);
                (eg, how) = (e, h);
            }
            times.sort_by(f64::total_cmp);
            (times[2], eg, how)
        };
        println!("  vanilla K = {k}: shipped {:.1} ms ({}), generated {:.1} ms ({}), renamed copy {:.1} ms ({}); copy/best {:.2}; eg {:.9} / {:.9} / {:.9}",
            shipped.0 * 1e3, shipped.2, generated.0 * 1e3, generated.2, copy.0 * 1e3, copy.2,
            copy.0 / shipped.0.min(generated.0), shipped.1, generated.1, copy.1);
    }
    if quick {
        return;
    }
    let data = aedyn::source::DataSource::Empirical(Arc::new(
        ae_runtime::data::RealData::new(
            ae_runtime::data::load(
                concat!(env!("CARGO_MANIFEST_DIR"), "/data/china.jpg"),
                &ae_runtime::data::LoadOptions {
                    patch: Some(32),
                    stride: Some(4),
                    ..Default::default()
                },
            )
            .unwrap(),
        )
        .unwrap(),
    ));
    let times = ae_runtime::ode::log_times(0.01, 100.0, 100);
    let job = |equations: &str| OdeJob {
        times: times.clone(),
        ..OdeJob::new(equations, 64, ActivationKind::Erf, data.clone())
    };
    let generated = run(&job("full_spectrum"), 1);
    let copy = run(&job(&own("full_spectrum", 64)), 1);
    println!(
        "  full_spectrum K = 64, 32x32 patches (D = 1024), t = 100: generated {:.2} s, renamed copy {:.2} s ({}); copy/generated {:.2}; eg {:.9} / {:.9}",
        generated.0, copy.0, copy.2, copy.0 / generated.0, generated.1, copy.1
    );
}

/// Vanilla K = 3 with the command line's defaults (spikes 9, 3, 1, D = 1000, t = 1000) under each
/// activation, against the same run with erf: the shipped file with its generated kernels, and
/// a copy declaring activations of its own (compiled at run time).
fn activations() {
    println!(
        "activations by series against erf's closed forms, vanilla K = 3, default options (5 rounds, each \
         timing erf generated and erf on the JIT path, median of 3 each, and then the activation once, \
         so that the machine's drifts hit all three alike; times are medians over rounds, ratios the \
         median of the rounds' ratios):"
    );
    let path = scratch().join("activations.ae");
    let (_, text) = renamed("vanilla");
    let declared =
        "activation th(x) = tanh(x)\nactivation softplus(x) = log(1 + exp(x))\nactivation ramp(x) = (x + abs(x)) / 2\n\
         activation leaky(x) = (1.1 * x + 0.9 * abs(x)) / 2\nactivation hardtanh(x) = (abs(x + 1) - abs(x - 1)) / 2\n\
         activation relu6(x) = (abs(x) - abs(x - 6) + 6) / 2\n\
         activation elu(x) = (x + abs(x)) / 2 + exp((x - abs(x)) / 2) - 1\nactivation xabs(x) = x * abs(x)\n\
         activation abstanh(x) = abs(tanh(x))\nactivation sigmoid(x) = 1 / (1 + exp(-x))\n\
         activation gelu(x) = x * (1 + erf(x / sqrt(2))) / 2\nactivation step(x) = (1 + sign(x)) / 2\n\
         activation tanhstep(x) = tanh(x) + sign(x - 0.3) / 2\n";
    std::fs::write(&path, format!("{text}\n{declared}")).unwrap();
    let copy = path.to_string_lossy().into_owned();
    let source = DataSource::spiked(Dim::Finite(1000), &[9.0, 3.0, 1.0], 1.0, 0);
    let job = |equations: &str, activation: &str| OdeJob::new(equations, 3, activation, source.clone());
    let (erf_job, erf_copy_job) = (job("vanilla", "erf"), job(&copy, "erf"));
    let (mut erf_times, mut erf_copy_times) = (Vec::new(), Vec::new());
    for (equations, activation, label) in [
        ("vanilla", "tanh", "built-in tanh, generated"),
        (copy.as_str(), "th", "declared tanh(x), JIT"),
        (copy.as_str(), "softplus", "declared log(1 + exp(x)), JIT"),
        (copy.as_str(), "ramp", "declared (x + abs(x)) / 2, JIT"),
        (copy.as_str(), "leaky", "declared (1.1 x + 0.9 abs(x)) / 2, JIT"),
        (copy.as_str(), "hardtanh", "declared (abs(x + 1) - abs(x - 1)) / 2, JIT"),
        (copy.as_str(), "relu6", "declared (abs(x) - abs(x - 6) + 6) / 2, JIT"),
        (copy.as_str(), "elu", "declared ELU (g'' jumps), JIT"),
        (copy.as_str(), "xabs", "declared x * abs(x) (g'' jumps), JIT"),
        (copy.as_str(), "abstanh", "declared abs(tanh(x)) (g' jumps), JIT"),
        (copy.as_str(), "sigmoid", "declared 1 / (1 + exp(-x)), JIT"),
        (copy.as_str(), "gelu", "declared GELU x (1 + erf(x / sqrt(2))) / 2, JIT"),
        (copy.as_str(), "step", "declared step (1 + sign(x)) / 2 (g jumps), JIT"),
        (
            copy.as_str(),
            "tanhstep",
            "declared tanh(x) + sign(x - 0.3) / 2 (g jumps), JIT",
        ),
    ] {
        let (mut times, mut to_generated, mut to_same_path) = (Vec::new(), Vec::new(), Vec::new());
        let mut how = String::new();
        for _ in 0..5 {
            // The erf runs take milliseconds, where the machine's noise is largest: three each.
            let (erf, erf_copy) = (run(&erf_job, 3).0, run(&erf_copy_job, 3).0);
            let r = run(&job(equations, activation), 1);
            how = r.2;
            times.push(r.0);
            to_generated.push(r.0 / erf);
            to_same_path.push(r.0 / if equations == "vanilla" { erf } else { erf_copy });
            erf_times.push(erf);
            erf_copy_times.push(erf_copy);
        }
        println!(
            "  {label}: {:.1} ms ({how}); {:.0}x erf generated, {:.0}x erf on the same path",
            middle(&mut times) * 1e3,
            middle(&mut to_generated),
            middle(&mut to_same_path)
        );
    }
    println!(
        "  erf over all rounds: generated {:.2} ms ({}), copy {:.2} ms ({})",
        middle(&mut erf_times) * 1e3,
        run(&erf_job, 1).2,
        middle(&mut erf_copy_times) * 1e3,
        run(&erf_copy_job, 1).2
    );
}

/// The median of `values`.
fn middle(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    one_rhs();
    compile_times();
    activations();
    integrations(quick);
    let _ = std::fs::remove_dir_all(scratch());
}
