//! The sweep machinery's cost, side by side in one run: a point inside a sweep against the same
//! point run alone, 16 points on every core against one, and resuming a finished 100-point
//! sweep. Run: `cargo bench --bench sweep`.

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
    let dir = std::env::temp_dir().join(format!("aedyn-bench-sweep-{}-{tag}", std::process::id()));
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

fn main() {
    // 1. Overhead per point: 16 points in a sweep on one worker against the same 16 command
    //    lines run alone one after the other; ODE points of about 4 ms (vanilla K = 3,
    //    t = 1000), then compare points of about 50 ms (D = 500, t = 20, 2 replicas).
    let lrs: Vec<String> = (0..16).map(|i| format!("{}", 0.5 + 0.05 * i as f64)).collect();
    let grid = format!("lr = [{}]", lrs.join(", "));
    for (command, fixed, extra) in [
        ("ode", "k = 3", vec![]),
        (
            "compare",
            "d = 500\nt-end = 20\nseeds = 2\nthreads = 1",
            vec!["--d", "500", "--t-end", "20", "--seeds", "2", "--threads", "1"],
        ),
    ] {
        let mut ratios = Vec::new();
        for round in 0..3 {
            let argv = |lr: &str| {
                let mut argv = strings(&[
                    command,
                    "--lr",
                    lr,
                    "--out",
                    "/tmp/aedyn-bench-alone.csv",
                    "--quiet",
                    "--json",
                ]);
                argv.extend(strings(&extra));
                argv
            };
            // In process, outputs kept in memory: the machinery's own cost, at its strictest.
            let alone = seconds(|| lrs.iter().for_each(|lr| run(&argv(lr))));
            // As a user runs a point alone: a process that writes its CSV.
            let processes = seconds(|| {
                for lr in &lrs {
                    let status = std::process::Command::new(env!("CARGO_BIN_EXE_aedyn"))
                        .args(argv(lr))
                        .stdout(std::process::Stdio::null())
                        .status()
                        .expect("runs");
                    assert!(status.success());
                }
            });
            let (file, out) = sweep_file(&format!("overhead-{command}-{round}"), command, fixed, &grid);
            let swept = seconds(|| {
                run(&strings(&[
                    "sweep",
                    &file,
                    "--out-dir",
                    &out,
                    "--threads",
                    "1",
                    "--quiet",
                ]))
            });
            println!(
                "16 {command} points: alone {alone:.3} s, in a sweep on one worker {swept:.3} s ({:.3}x); \
                 as 16 processes {processes:.3} s ({:.3}x)",
                swept / alone,
                swept / processes
            );
            ratios.push(swept / alone);
        }
        ratios.sort_by(f64::total_cmp);
        println!(
            "{command}: overhead per point, median of 3: {:+.1}%",
            100.0 * (ratios[1] - 1.0)
        );
    }

    // 2. 16 compare points (D = 500, t = 20, 2 replicas each) on every core against one.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let grid = "lr = [0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.25]\nseed = [0, 1]";
    let fixed = "d = 500\nt-end = 20\nseeds = 2";
    let (file, out) = sweep_file("serial", "compare", fixed, grid);
    let one = seconds(|| {
        run(&strings(&[
            "sweep",
            &file,
            "--out-dir",
            &out,
            "--threads",
            "1",
            "--quiet",
        ]))
    });
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
}
