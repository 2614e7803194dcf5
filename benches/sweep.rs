//! The sweep machinery's cost, side by side in one run: a point inside a sweep against the same
//! point run alone, 16 points on every core against one, and resuming a finished 100-point
//! sweep. Run: `cargo bench --bench sweep`.

mod common;
use common::scratch;

use std::sync::Arc;
use std::time::Instant;

use aedyn::cli::capture::{run_captured, ProgressCell};

fn run(argv: &[String]) {
    run_captured(argv, Arc::new(ProgressCell::default())).expect("runs");
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// A fresh sweep of `command` over `grid` (one TOML list) with `fixed` (TOML lines) in a new
/// directory; returns (sweep file, output directory).
fn sweep_file(tag: &str, command: &str, fixed: &str, grid: &str) -> (String, String) {
    let dir = scratch().join(tag);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("sweep.toml");
    std::fs::write(
        &file,
        format!("command = \"{command}\"\n[fixed]\n{fixed}\n[grid]\n{grid}\n"),
    )
    .unwrap();
    (
        file.to_string_lossy().into_owned(),
        dir.join("out").to_string_lossy().into_owned(),
    )
}

fn seconds(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

/// Runs the sweep `file` into `out` on one worker.
fn sweep_on_one_worker(file: &str, out: &str) {
    run(&strings(&[
        "sweep",
        file,
        "--out-dir",
        out,
        "--threads",
        "1",
        "--quiet",
    ]));
}

/// One point's command line, as `aedyn` takes it, its CSV written to `out`.
fn point_argv(command: &str, lr: &str, extra: &[&str], out: &str) -> Vec<String> {
    let mut argv = strings(&[command, "--lr", lr, "--out", out, "--quiet", "--json"]);
    argv.extend(strings(extra));
    argv
}

/// Seconds for `n` points run alone in process, one after the other: with their outputs kept
/// in memory, and writing their files as the command does (the CSV and its record); then the
/// same points as a sweep on one worker.
struct Timed {
    in_memory: f64,
    writing: f64,
    swept: f64,
}

fn alone_and_swept(command: &str, fixed: &str, extra: &[&str], n: usize, tag: &str) -> Timed {
    let lrs: Vec<String> = (0..n).map(|i| format!("{}", 0.5 + 0.01 * i as f64)).collect();
    let alone = scratch().join("alone.csv").to_string_lossy().into_owned();
    let in_memory = seconds(|| lrs.iter().for_each(|lr| run(&point_argv(command, lr, extra, &alone))));
    let (file, out) = sweep_file(tag, command, fixed, &format!("lr = [{}]", lrs.join(", ")));
    let alone_dir = std::path::Path::new(&out).with_file_name("alone");
    std::fs::create_dir_all(&alone_dir).unwrap();
    let writing = seconds(|| {
        for (i, lr) in lrs.iter().enumerate() {
            let csv = alone_dir.join(format!("{i}.csv")).to_string_lossy().into_owned();
            // Without --json: its summary would be printed here, which a sweep does not do.
            let argv: Vec<String> = point_argv(command, lr, extra, &csv)
                .into_iter()
                .filter(|a| a != "--json")
                .collect();
            aedyn::cli::run_in_process(&argv).expect("runs");
        }
    });
    let swept = seconds(|| sweep_on_one_worker(&file, &out));
    Timed {
        in_memory,
        writing,
        swept,
    }
}

/// The median of `values`.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // 1. Overhead per point: a sweep on one worker against the same command lines run alone
    //    in process, writing their files as the command does (the CSV and its record, as a
    //    sweep does) and, the strictest baseline, with their outputs kept in memory; for ODE
    //    points of about 4 ms (vanilla K = 3, t = 1000) and compare points of about 50 ms
    //    (D = 500, t = 20, 2 replicas). A sweep also has costs of its own, once (its file
    //    read, its two tables written and synced): the cost a point adds is the slope between
    //    a small and a large sweep. Medians of 5 rounds: a 4 ms point is at the mercy of this
    //    shared machine. Then 16 points against 16 processes, as a user runs points alone.
    for (command, fixed, extra, (small, large)) in [
        ("ode", "k = 3", vec![], (32, 128)),
        (
            "compare",
            "d = 500\nt-end = 20\nseeds = 2\nthreads = 1",
            vec!["--d", "500", "--t-end", "20", "--seeds", "2", "--threads", "1"],
            (16, 48),
        ),
    ] {
        let (mut over_memory, mut over_writing) = (Vec::new(), Vec::new());
        for round in 0..5 {
            let a = alone_and_swept(command, fixed, &extra, small, &format!("{command}-small-{round}"));
            let b = alone_and_swept(command, fixed, &extra, large, &format!("{command}-large-{round}"));
            let added = |alone: fn(&Timed) -> f64| (b.swept - a.swept) / (alone(&b) - alone(&a)) - 1.0;
            let (memory, writing) = (added(|t| t.in_memory), added(|t| t.writing));
            println!(
                "{command}: {large} points alone {:.3} s in memory, {:.3} s writing files, swept {:.3} s; \
                 a point's added cost {:+.1}% over alone in memory, {:+.1}% over alone writing files",
                b.in_memory,
                b.writing,
                b.swept,
                100.0 * memory,
                100.0 * writing
            );
            over_memory.push(memory);
            over_writing.push(writing);
        }
        println!(
            "{command}: medians of 5: the cost a point adds {:+.1}% over alone in memory, {:+.1}% over alone writing files",
            100.0 * median(over_memory),
            100.0 * median(over_writing)
        );
        let lrs: Vec<String> = (0..16).map(|i| format!("{}", 0.5 + 0.01 * i as f64)).collect();
        let processes = seconds(|| {
            for lr in &lrs {
                let status = std::process::Command::new(env!("CARGO_BIN_EXE_aedyn"))
                    .args(point_argv(
                        command,
                        lr,
                        &extra,
                        &scratch().join("alone.csv").to_string_lossy(),
                    ))
                    .stdout(std::process::Stdio::null())
                    .status()
                    .expect("runs");
                assert!(status.success());
            }
        });
        let swept = alone_and_swept(command, fixed, &extra, 16, &format!("{command}-processes")).swept;
        println!(
            "{command}: 16 points as 16 processes {processes:.3} s, in a sweep {swept:.3} s ({:.3}x)",
            swept / processes
        );
    }

    // 2. 16 compare points (D = 500, t = 20, 2 replicas each) on every core against one.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let grid = "lr = [0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.25]\nseed = [0, 1]";
    let fixed = "d = 500\nt-end = 20\nseeds = 2";
    let (file, out) = sweep_file("serial", "compare", fixed, grid);
    let one = seconds(|| sweep_on_one_worker(&file, &out));
    let (file, out) = sweep_file("parallel", "compare", fixed, grid);
    let all = seconds(|| run(&strings(&["sweep", &file, "--out-dir", &out, "--quiet"])));
    println!(
        "16 compare points: one worker {one:.2} s, {cores} workers {all:.2} s ({:.2}x faster)",
        one / all
    );

    // 3. Resuming a finished 100-point sweep of ode points: only the keys are checked.
    let values: Vec<String> = (0..100).map(|i| format!("{}", 0.5 + 0.01 * i as f64)).collect();
    let (file, out) = sweep_file(
        "resume",
        "ode",
        "k = 2\nt-end = 10",
        &format!("lr = [{}]", values.join(", ")),
    );
    let first = seconds(|| run(&strings(&["sweep", &file, "--out-dir", &out, "--quiet"])));
    let again = seconds(|| run(&strings(&["sweep", &file, "--out-dir", &out, "--quiet"])));
    println!("100 ode points: first run {first:.2} s, resuming the finished sweep {again:.3} s");
    let _ = std::fs::remove_dir_all(scratch());
}
