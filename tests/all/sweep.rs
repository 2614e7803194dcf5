//! `aedyn sweep`: a grid equals its points run one by one, a killed sweep resumes where it
//! stopped, shards collected equal one process, and bad files fail at their line and key.

use std::path::{Path, PathBuf};

use crate::common::{aedyn, temp};

/// A sweep file `name` with `body`, and a fresh output directory for it.
fn sweep_file(name: &str, body: &str) -> (PathBuf, PathBuf) {
    let file = temp(&format!("{name}.toml"));
    std::fs::write(&file, body).unwrap();
    let dir = temp(&format!("{name}-out"));
    let _ = std::fs::remove_dir_all(&dir);
    (file, dir)
}

fn run_sweep(file: &Path, dir: &Path, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let mut args = vec![
        "sweep",
        file.to_str().unwrap(),
        "--out-dir",
        dir.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = aedyn(&args);
    let summary = serde_json::from_str(out.trim()).unwrap_or(serde_json::Value::Null);
    (code, summary, err)
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// points.csv without its `seconds` column (the one thing a rerun may change).
fn without_seconds(points: &str) -> Vec<String> {
    let header: Vec<&str> = points.lines().next().unwrap().split(',').collect();
    let at = header.iter().position(|h| *h == "seconds").unwrap();
    points
        .lines()
        .map(|l| {
            let mut cells: Vec<&str> = l.split(',').collect();
            cells.remove(at);
            cells.join(",")
        })
        .collect()
}

const GRID: &str = r#"title = "3 lr x 2 K x 2 seeds"
command = "compare"
[fixed]
d = 100
t-end = 2
points = 4
seeds = 2
[grid]
lr = [0.5, 1, 2]
k = [2, 3]
seed = [0, 1]
"#;

#[test]
fn a_grid_equals_its_points_run_one_by_one() {
    let (file, dir) = sweep_file("grid", GRID);
    let (code, summary, err) = run_sweep(&file, &dir, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (summary["points"].as_u64(), summary["done"].as_u64()),
        (Some(12), Some(12))
    );
    // Each point against its own command (with the command's default thread count): every
    // column of its CSV, row by row, under the same name in the tables; the columns other points
    // have (K = 3 has more order parameters than K = 2) are empty in its rows.
    let got = read(dir.join("trajectories.csv"));
    let header: Vec<&str> = got.lines().next().unwrap().split(',').collect();
    assert!(header.starts_with(&["lr", "k", "seed", "t"]), "{header:?}");
    let mut rows = got.lines().skip(1);
    let points = read(dir.join("points.csv"));
    let points_header: Vec<&str> = points.lines().next().unwrap().split(',').collect();
    let mut finals = points.lines().skip(1);
    for lr in ["0.5", "1", "2"] {
        for k in ["2", "3"] {
            for seed in ["0", "1"] {
                let out = temp(&format!("grid-{lr}-{k}-{seed}.csv"));
                let (code, _, err) = aedyn(&[
                    "compare",
                    "--d",
                    "100",
                    "--t-end",
                    "2",
                    "--points",
                    "4",
                    "--seeds",
                    "2",
                    "--lr",
                    lr,
                    "--k",
                    k,
                    "--seed",
                    seed,
                    "--quiet",
                    "--out",
                    out.to_str().unwrap(),
                ]);
                assert_eq!(code, 0, "{err}");
                let csv = read(out);
                let own: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
                let same_row = |table: &[&str], line: &str, row: &str| {
                    let cells: Vec<&str> = line.split(',').collect();
                    let expected: Vec<&str> = row.split(',').collect();
                    assert_eq!(&cells[..3], &[lr, k, seed]);
                    for (name, cell) in table.iter().zip(&cells).skip(3) {
                        let want = own.iter().position(|o| o == name).map_or("", |j| expected[j]);
                        assert!(
                            ["seconds", "status"].contains(name) || *cell == want,
                            "{lr},{k},{seed}: {name} = {cell}, expected {want}"
                        );
                    }
                };
                let data: Vec<&str> = csv.lines().skip(1).collect();
                for row in &data {
                    same_row(&header, rows.next().unwrap(), row);
                }
                let last = finals.next().unwrap();
                same_row(&points_header, last, data.last().unwrap());
                assert!(last.ends_with(",ok"), "{last}");
            }
        }
    }
    assert!(rows.next().is_none());
    // Every point's files are named by a key of 32 hex digits: never a path.
    for entry in std::fs::read_dir(dir.join("points")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let (stem, ext) = name.split_once('.').unwrap();
        assert!(
            stem.len() == 32 && stem.bytes().all(|b| b.is_ascii_hexdigit()) && ["csv", "json"].contains(&ext),
            "{name}"
        );
    }
}

// Points slow enough (about 0.17 s each in a test build) that the sweep is still running when
// the test, polling every 20 ms, sees its second point done and kills it.
const SLOW: &str = r#"command = "ode"
[fixed]
k = 3
t-end = 300
method = "dop853"
rtol = 1e-12
[grid]
lr = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
"#;

#[test]
fn a_killed_sweep_resumes_with_the_points_it_lacks() {
    let (file, dir) = sweep_file("killed", SLOW);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_aedyn"))
        .args([
            "sweep",
            file.to_str().unwrap(),
            "--out-dir",
            dir.to_str().unwrap(),
            "--threads",
            "1",
            "--quiet",
        ])
        .spawn()
        .unwrap();
    let finished = || {
        std::fs::read_dir(dir.join("points"))
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
                })
                .count()
            })
            .unwrap_or(0)
    };
    let start = std::time::Instant::now();
    while finished() < 2 && start.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = finished();
    assert!(
        (2..6).contains(&before),
        "{before} points were done when the sweep was killed"
    );
    let (code, summary, err) = run_sweep(&file, &dir, &[]);
    assert_eq!(code, 0, "{err}");
    // Only the missing points ran.
    assert_eq!(summary["skipped"].as_u64(), Some(before as u64), "{summary}");
    assert_eq!(summary["done"].as_u64(), Some(6 - before as u64), "{summary}");
    // The same tables as a sweep never interrupted.
    let (_, whole) = sweep_file("unkilled", SLOW);
    let (code, _, err) = run_sweep(&file, &whole, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(read(dir.join("trajectories.csv")), read(whole.join("trajectories.csv")));
    assert_eq!(
        without_seconds(&read(dir.join("points.csv"))),
        without_seconds(&read(whole.join("points.csv")))
    );
}

#[test]
fn shards_then_collect_equal_one_process() {
    let (file, dir) = sweep_file("sharded", GRID);
    // Collecting before the shards have run lists what is missing and fails.
    let (code, _, err) = run_sweep(&file, &dir, &["--collect"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("missing: point 0 (lr = 0.5, k = 2, seed = 0)") && err.contains("12 of 12 points"),
        "{err}"
    );
    let children: Vec<_> = (0..4)
        .map(|i| {
            std::process::Command::new(env!("CARGO_BIN_EXE_aedyn"))
                .args([
                    "sweep",
                    file.to_str().unwrap(),
                    "--out-dir",
                    dir.to_str().unwrap(),
                    "--shard",
                    &format!("{i}/4"),
                    "--quiet",
                ])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    assert!(!dir.join("points.csv").exists(), "a shard writes no tables");
    let (code, summary, err) = run_sweep(&file, &dir, &["--collect"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary["skipped"].as_u64(), Some(12));
    let (_, single) = sweep_file("unsharded", GRID);
    let (code, _, err) = run_sweep(&file, &single, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        read(dir.join("trajectories.csv")),
        read(single.join("trajectories.csv"))
    );
    assert_eq!(
        without_seconds(&read(dir.join("points.csv"))),
        without_seconds(&read(single.join("points.csv")))
    );
    // The Slurm script runs the same shards.
    let (code, out, err) = aedyn(&[
        "sweep",
        file.to_str().unwrap(),
        "--out-dir",
        dir.to_str().unwrap(),
        "--slurm",
        "4",
        "--sbatch",
        "--time=00:10:00",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("sbatch "), "{out}");
    let script = read(dir.join("sweep.sbatch"));
    assert!(
        script.contains("#SBATCH --array=0-3\n") && script.contains("#SBATCH --time=00:10:00\n"),
        "{script}"
    );
    assert!(script.contains("--shard \"${SLURM_ARRAY_TASK_ID}/4\""), "{script}");
}

#[test]
fn a_failing_point_leaves_the_others_and_says_so() {
    let equations = temp("sweep-blowup.ae");
    std::fs::write(
        &equations,
        "hidden k\nparam a = 1\nstate x[k] init 1\nd/dt x[k] = a * x[k]^2\nobserve s = sum(k, x[k])\n",
    )
    .unwrap();
    let body = format!(
        "command = \"ode\"\n[fixed]\nequations = {:?}\nk = 1\nt-end = 2\n[grid]\nparam = [\"a=0.1\", \"a=1\", \"a=0.2\"]\n",
        equations.to_str().unwrap()
    );
    let (file, dir) = sweep_file("failing", &body);
    let (code, summary, err) = run_sweep(&file, &dir, &[]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        (summary["done"].as_u64(), summary["failed"].as_u64()),
        (Some(2), Some(1)),
        "{summary}"
    );
    assert!(
        err.contains("1 of 3 points failed") && err.contains("param = a=1"),
        "{err}"
    );
    let points = read(dir.join("points.csv"));
    let lines: Vec<&str> = points.lines().skip(1).collect();
    assert!(lines[0].starts_with("a=0.1,") && lines[0].ends_with(",ok"), "{points}");
    // The error is the status, quoted (it holds commas), with no values beside it.
    assert!(
        lines[1].starts_with("a=1,,,,\"integration failed") && lines[1].contains("t = "),
        "{points}"
    );
    assert!(lines[2].starts_with("a=0.2,") && lines[2].ends_with(",ok"), "{points}");
}

#[test]
fn bad_sweep_files_fail_at_their_line_and_key() {
    for (body, line, needle) in [
        (
            "command = \"ode\"\n[grid]\nlearning-rate = [1, 2]\n",
            3,
            "learning-rate",
        ),
        (
            "command = \"ode\"\n[fixed]\nk = 2\n[grid]\nlr = []\n",
            5,
            "an empty list",
        ),
        (
            "command = \"ode\"\n[fixed]\nlr = 1\n[grid]\nlr = [1, 2]\n",
            5,
            "given twice",
        ),
        ("command = \"fit\"\n[grid]\nlr = [1]\n", 1, "unknown command `fit`"),
        (
            "command = \"ode\"\n[fixed]\nk = 2\n[grid]\nlr = [1, -1]\n",
            5,
            "point 1 (lr = -1)",
        ),
        ("command = \"ode\"\n[grid]\nlr = 1\n", 3, "expected a list"),
        ("command = \"ode\"\n[zip]\nlr = [1, 2]\nk = [1]\n", 4, "vary together"),
        (
            "command = \"ode\"\n[grid]\nout = [\"a.csv\"]\n",
            3,
            "the sweep chooses its outputs",
        ),
        ("command = \"ode\"\n[fixed]\nk = 2\n", 1, "nothing varies"),
    ] {
        let (file, dir) = sweep_file("bad", body);
        let (code, _, err) = run_sweep(&file, &dir, &[]);
        assert_eq!(code, 2, "{body}: {err}");
        let at = format!("{}:{line}:", file.display());
        assert!(
            err.contains(&at) && err.contains(needle),
            "{body}: expected `{at}` and `{needle}` in {err}"
        );
        assert!(!dir.exists(), "{body}: nothing may be written");
    }
}

#[test]
fn a_sweep_draws_its_plots_and_refuses_plots_of_unknown_axes() {
    let body = format!(
        "{GRID}\n[[plot]]\nfile = \"eg\"\nkind = \"lines\"\ntitle = \"eg\"\ncolumn = \"eg_ode\"\nby = \"lr\"\nlog_x = true\n\n[[plot]]\nfile = \"map\"\nkind = \"heatmap\"\nvalue = \"eg_sgd_mean\"\nx = \"lr\"\ny = \"k\"\n"
    );
    let (file, dir) = sweep_file("plotted", &body);
    let (code, _, err) = run_sweep(&file, &dir, &[]);
    assert_eq!(code, 0, "{err}");
    for name in ["eg.png", "map.png"] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 5000, "{name}");
        let svg = read(dir.join(name.replace(".png", ".svg")));
        assert!(svg.contains("</svg>"), "{name}");
    }
    let map = read(dir.join("map.svg"));
    assert!(
        map.contains("\nlr\n") && map.contains("\nk\n"),
        "the heat map names its axes"
    );
    let bad =
        format!("{GRID}\n[[plot]]\nfile = \"m\"\nkind = \"heatmap\"\nvalue = \"eg_ode\"\nx = \"lr\"\ny = \"d\"\n");
    let (file, dir) = sweep_file("badplot", &bad);
    let (code, _, err) = run_sweep(&file, &dir, &[]);
    assert_eq!(code, 2, "{err}");
    let line = bad.lines().position(|l| l.starts_with("y = ")).unwrap() + 1;
    assert!(
        err.contains(&format!(":{line}:")) && err.contains("`d` is not one of the sweep's axes"),
        "{err}"
    );
}

#[test]
fn the_first_plateau_lasts_longer_by_the_same_time_for_each_decade_of_smaller_weights() {
    // docs/theory.md section 8, claim 2: from small weights the units leave the first saddle
    // at a constant exponential rate, so the escape time grows linearly in log(1/init-std).
    // Measured at D = 1000 (ODE): 0.518, 0.826, 1.146 at 0.1, 0.01, 0.001 (steps 0.308 and
    // 0.320). The law is asymptotic in small weights; 15% between the two decades' steps
    // allows the corrections of the largest scale.
    let body = "command = \"compare\"\n[fixed]\nk = 3\nd = 1000\nt-end = 3\nt-min = 0.02\npoints = 150\nseed = 3\nseeds = 1\n[grid]\ninit-std = [0.1, 0.01, 0.001]\n[[plot]]\nfile = \"escape\"\nkind = \"escape\"\nx = \"init-std\"\nlog_x = true\n";
    let (file, dir) = sweep_file("escape", body);
    let (code, _, err) = run_sweep(&file, &dir, &[]);
    assert_eq!(code, 0, "{err}");
    let csv = read(dir.join("escape.csv"));
    assert!(csv.starts_with("init-std,all,escape_ode,escape_sgd\n"), "{csv}");
    let times: Vec<f64> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    let (first, second) = (times[1] - times[0], times[2] - times[1]);
    assert!(first > 0.0 && second > 0.0, "{times:?}");
    assert!(
        (second / first - 1.0).abs() < 0.15,
        "steps per decade {first} and {second}: {times:?}"
    );
}

#[test]
fn a_point_whose_csv_does_not_match_its_record_is_computed_again() {
    // What a machine that crashed before the files reached the disk may leave: a record beside
    // a cut CSV. The record holds the CSV's SHA-256, so the point counts as missing.
    let (file, dir) = sweep_file("torn", GRID);
    let (code, _, err) = run_sweep(&file, &dir, &[]);
    assert_eq!(code, 0, "{err}");
    let before = read(dir.join("trajectories.csv"));
    let csv = std::fs::read_dir(dir.join("points"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "csv"))
        .unwrap();
    let text = read(csv.clone());
    std::fs::write(&csv, &text[..text.len() / 2]).unwrap();
    let (code, summary, err) = run_sweep(&file, &dir, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (summary["done"].as_u64(), summary["skipped"].as_u64()),
        (Some(1), Some(11)),
        "{summary}"
    );
    assert_eq!(read(dir.join("trajectories.csv")), before);
}
