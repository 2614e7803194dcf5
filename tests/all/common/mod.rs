//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use ae_core::averages::ActivationKind;
use ae_dsl::Model;
use ae_runtime::data::{eigenvectors, Dim, EigenFamily, Spiked, Weights};
use ae_runtime::init;
use ae_runtime::interp::{InitInputs, Interpreter};

pub fn shipped(name: &str) -> (Arc<Model>, &'static str) {
    let src = aedyn::models::shipped_source(name).expect("shipped equations");
    (
        Arc::new(ae_dsl::compile(&format!("equations/{name}.ae"), src).expect("compiles")),
        src,
    )
}

/// Parameters of every shipped file, set to generic non-trivial values.
pub fn generic_params(model: &Model) -> Vec<f64> {
    model
        .params
        .iter()
        .map(|p| match p.name.as_str() {
            "lr" => 0.7,
            "kappa" => 0.13,
            "rho_bulk" => 0.02,
            "bulk_trace" => 0.97,
            _ => 0.5,
        })
        .collect()
}

/// A physically valid state: the order parameters of random weights of dimension `d` for `m`
/// modes (all `d` modes when the model has no bulk), with modes `rho`.
pub fn random_state(model: &Model, k: usize, d: usize, m: usize, seed: u64) -> (Vec<f64>, InitInputs) {
    let lumped = model.param_index("rho_bulk").is_some();
    let weights = Weights::random(k, d, 0.7, seed);
    let data = Spiked {
        d: Dim::Finite(d),
        spikes: vec![1.0; m],
        sigma: 1.0,
    };
    let eig = eigenvectors(EigenFamily::Random, if lumped { m } else { d }, d, seed + 1);
    let inputs = if lumped {
        init::from_weights(&weights, &eig, &data)
    } else {
        init::from_weights_full(&weights, &eig)
    };
    let rho: Vec<f64> = (0..inputs.m).map(|i| 2.0 / (1.0 + i as f64) + 0.1).collect();
    (rho, inputs)
}

pub fn interpreter(model: &Arc<Model>, src: &str, k: usize, act: ActivationKind, rho: &[f64]) -> Interpreter {
    use ae_core::kernel::Kernel;
    let mut it = Interpreter::new(model.clone(), src, k, act);
    it.set_rho(rho.to_vec());
    let params = generic_params(model);
    it.params_mut().copy_from_slice(&params);
    it
}

/// The figure-2 configuration (K = M = 3, spikes 9,3,1, sigma = 1, lr = 1, seed 3, initial std
/// 0.1, random eigenvectors) for `equations`, with weight decay `kappa`.
pub fn figure2_job(equations: &str, act: impl ToString, d: Dim, kappa: f64, times: Vec<f64>) -> aedyn::run::OdeJob {
    use aedyn::{run::OdeJob, source::InitChoice};
    let source = aedyn::source::DataSource::spiked(d, &[9.0, 3.0, 1.0], 1.0, 3);
    OdeJob {
        init: InitChoice::Random { seed: 3, std: 0.1 },
        rates: ae_runtime::sgd::Rates { lr: 1.0, kappa },
        times,
        ..OdeJob::new(equations, 3, act, source)
    }
}

/// Runs the `aedyn` binary: (exit code, stdout, stderr).
pub fn aedyn(args: &[&str]) -> (i32, String, String) {
    aedyn_with_env(args, &[])
}

/// Asserts that `aedyn args` is refused as bad input: exit code 2, nothing on standard output,
/// one line on standard error that contains `needle`.
pub fn refused(args: &[&str], needle: &str) {
    let (code, out, err) = aedyn(args);
    assert_eq!(code, 2, "{args:?}: {err}");
    assert!(out.is_empty(), "{args:?}: {out}");
    assert!(
        err.starts_with("error: ") && err.contains(needle) && err.lines().count() == 1,
        "{args:?}: {err}"
    );
}

/// `aedyn` with environment variables set: (exit code, stdout, stderr).
pub fn aedyn_with_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aedyn"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

static TEMP_DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// This test process's own temporary directory, named by the process id and the time of the
/// first call: process ids wrap (at 32768 on the CI machine), and a directory left by an
/// earlier run with the same id held files that tests assert were not written. It is removed
/// when the process exits (345 of them had piled up in /tmp), unless AEDYN_KEEP_TEST_FILES is
/// set, for looking at a failure's files.
pub fn temp_dir() -> &'static std::path::Path {
    TEMP_DIR.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |t| t.as_nanos());
        let dir = std::env::temp_dir().join(format!("aedyn-tests-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        if std::env::var_os("AEDYN_KEEP_TEST_FILES").is_none() {
            extern "C" fn remove_temp_dir() {
                if let Some(dir) = TEMP_DIR.get() {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
            extern "C" {
                fn atexit(callback: extern "C" fn()) -> std::os::raw::c_int;
            }
            // SAFETY: atexit takes a plain function pointer; the callback only reads a set
            // OnceLock and removes files. The test harness ends by returning from main or by
            // process::exit, both of which run it.
            unsafe { atexit(remove_temp_dir) };
        }
        dir
    })
}

/// A path in this test process's own temporary directory.
pub fn temp(name: &str) -> std::path::PathBuf {
    temp_dir().join(name)
}

/// A fresh FIFO (named pipe) in the temporary directory, with no writer.
pub fn fifo(name: &str) -> std::path::PathBuf {
    let path = temp(name);
    let _ = std::fs::remove_file(&path);
    assert!(std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap()
        .success());
    path
}

/// The names of the entries of `dir`, sorted (none if it does not exist).
pub fn file_names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The CSV of an `aedyn ode` run: header and rows.
pub fn ode_csv(args: &[&str], name: &str) -> (Vec<String>, Vec<Vec<f64>>) {
    let out = temp(name);
    let mut all = vec!["ode", "--quiet", "--out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let (code, _, err) = aedyn(&all);
    assert_eq!(code, 0, "{all:?}: {err}");
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    (header, rows)
}

/// Relative deviations of the seed-averaged SGD eg from the ODE eg at every t > 0, sorted
/// (the median is the middle entry, the worst the last).
pub fn sorted_eg_deviations(run: &aedyn::compare::CompareRun) -> Vec<f64> {
    let (ode, sgd) = (run.ode_eg(), run.sgd_eg());
    let mut deviations: Vec<f64> = ode
        .iter()
        .zip(&sgd)
        .skip(1)
        .map(|(o, (s, _))| (s - o).abs() / o)
        .collect();
    deviations.sort_by(f64::total_cmp);
    deviations
}
