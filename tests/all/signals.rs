//! Ctrl-C and SIGTERM during long runs: the run stops at its next check, removes what it
//! staged, keeps what was finished, and exits with 128 + the signal's number.

use crate::common::{aedyn, fifo, file_names, temp};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Waits until `ready` holds (at most two minutes: a debug build's first runs are slow).
fn wait_for(ready: impl Fn() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < Duration::from_secs(120), "the run never got there");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` and waits for the exit; the run under way checks the request at each output
/// time or SGD chunk, well within the 30 s allowed.
fn stop(mut child: Child, signal: &str) -> (Option<i32>, String) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            return (status.code(), err);
        }
        if start.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("still running 30 s after {signal}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_aedyn"))
        .args(args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_reproduce_stopped_by_sigterm_removes_its_staging_folder() {
    // The first run finishes into the staging folder, the second (about 20 s of SGD in a debug
    // build) is under way when the signal comes.
    let file = temp("signalled.toml");
    std::fs::write(
        &file,
        "title = \"t\"\nabout = \"a\"\n[[run]]\nname = \"quick\"\ncommand = \"ode\"\nargs = { k = 1, t-end = 1 }\n\
         [[run]]\nname = \"slow\"\ncommand = \"compare\"\nargs = { k = 2, d = 1000, t-end = 3000, seeds = 1 }\n",
    )
    .unwrap();
    let dir = temp("signalled-out");
    let child = spawn(&[
        "reproduce",
        file.to_str().unwrap(),
        "--out-dir",
        dir.to_str().unwrap(),
        "--quiet",
    ]);
    let staging = dir.join(format!(".staging-{}", child.id()));
    wait_for(|| staging.join("quick.csv").exists());
    let (code, err) = stop(child, "-TERM");
    assert_eq!(code, Some(128 + 15), "{err}");
    assert!(
        err.contains("error: stopped by SIGTERM; no output was written"),
        "{err}"
    );
    assert!(!staging.exists(), "the staging folder is removed on the signal");
    assert!(
        file_names(&dir).is_empty(),
        "nothing was moved into place: {:?}",
        file_names(&dir)
    );
}

#[test]
fn a_sweep_stopped_by_ctrl_c_keeps_its_finished_points_and_writes_no_tables() {
    let file = temp("interrupted-sweep.toml");
    std::fs::write(
        &file,
        "command = \"compare\"\n[fixed]\nk = 2\nd = 1000\nseeds = 1\n[grid]\nt-end = [1, 3000]\n",
    )
    .unwrap();
    let dir = temp("interrupted-sweep-out");
    let args = [
        "sweep",
        file.to_str().unwrap(),
        "--out-dir",
        dir.to_str().unwrap(),
        "--threads",
        "1",
        "--quiet",
    ];
    let child = spawn(&args);
    let kept = || {
        file_names(&dir.join("points"))
            .iter()
            .filter(|n| n.ends_with(".json"))
            .count()
    };
    wait_for(|| kept() == 1);
    let (code, err) = stop(child, "-INT");
    assert_eq!(code, Some(128 + 2), "{err}");
    assert_eq!(kept(), 1, "the point in flight is not kept");
    assert!(!dir.join("points.csv").exists() && !dir.join("trajectories.csv").exists());
    // --collect knows the finished point and names the missing one.
    let (code, _, err) = aedyn(&[&args[..], &["--collect"]].concat());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("1 of 2 points are not done yet"), "{err}");
}

#[test]
fn a_run_blocked_where_it_cannot_check_ends_after_the_grace_period() {
    // Opening a FIFO without a writer blocks in the kernel, where no output time comes: the
    // signal thread ends the process itself, 2 s after the signal.
    let fifo = fifo("no-writer.csv");
    let out = temp("blocked.csv");
    let child = spawn(&[
        "ode",
        "--equations",
        "full_spectrum",
        "--data",
        fifo.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let (code, err) = stop(child, "-TERM");
    assert_eq!(code, Some(128 + 15), "{err}");
    assert!(err.contains("stopped by SIGTERM"), "{err}");
    assert!(!out.exists());
}
