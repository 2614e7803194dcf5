//! The command line: bad input is one line on stderr, exit code 2, and nothing written.

use crate::common;

use common::{aedyn, aedyn_with_env, temp};

/// Runs `args` plus `--out FILE` and checks: exit code 2, one error line naming `needle`, no file.
fn rejects(sub: &str, args: &[&str], needle: &str) {
    let out = temp(&format!("{sub}-{}.csv", args.join("_").replace(['/', '.'], "")));
    let mut all = vec![sub];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", out.to_str().unwrap(), "--t-end", "1"]);
    let (code, stdout, stderr) = aedyn(&all);
    assert_eq!(code, 2, "{all:?}: exit code {code}, stderr: {stderr}");
    assert!(stdout.is_empty(), "{all:?}: wrote to stdout");
    assert!(
        stderr.contains(needle),
        "{all:?}: stderr `{stderr}` does not mention `{needle}`"
    );
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "{all:?}: more than one line: {stderr}"
    );
    assert!(!out.exists(), "{all:?}: wrote {}", out.display());
}

#[test]
fn bad_numbers_are_rejected_by_ode_and_compare() {
    for sub in ["ode", "compare"] {
        rejects(sub, &["--k", "0"], "--k must be at least 1");
        rejects(sub, &["--k", "3", "--d", "3"], "--d (3) must exceed --k (3)");
        rejects(
            sub,
            &["--k", "2", "--d", "4", "--spikes", "1,1,1,1,1"],
            "5 spikes do not fit in D = 4",
        );
        rejects(sub, &["--spikes", "9,-1"], "--spikes must be positive, got -1");
        rejects(sub, &["--spikes", "9,0"], "--spikes must be positive");
        rejects(sub, &["--spikes", ""], "--spikes: `` is not a number");
        rejects(sub, &["--spikes", "9,abc"], "--spikes: `abc` is not a number");
        rejects(sub, &["--lr", "0"], "--lr must be positive");
        rejects(sub, &["--lr", "-1"], "--lr must be positive");
        rejects(sub, &["--lr", "NaN"], "--lr must be a finite number, got NaN");
        rejects(sub, &["--sigma", "inf"], "--sigma must be a finite number, got inf");
        rejects(sub, &["--kappa", "-0.1"], "--kappa must be non-negative");
        rejects(
            sub,
            &["--d", "0"],
            "--d must be a positive whole number or `inf`, got `0`",
        );
        rejects(
            sub,
            &["--d", "99999999999"],
            "--d 99999999999 is too large (at most 16777216)",
        );
        rejects(
            sub,
            &["--activation", "sigmoid"],
            "unknown --activation `sigmoid`: expected erf, linear, relu or tanh",
        );
        rejects(sub, &["--init-std", "0"], "--init-std must be positive");
        rejects(
            sub,
            &["--eigenvectors", "fourier"],
            "unknown --eigenvectors `fourier`: expected random, sinusoidal or canonical",
        );
        rejects(
            sub,
            &["--method", "euler"],
            "unknown --method `euler`: expected auto, bdf, dop853, dopri5 or rodas4",
        );
        rejects(sub, &["--equations", "nonsense"], "unknown equations `nonsense`: expected one of density, full_spectrum, reduced, truncated, vanilla or the path of an .ae file");
        rejects(
            sub,
            &["--param", "nonsense=1"],
            "equations `vanilla` have no parameter `nonsense` (they have: lr, kappa, rho_bulk, bulk_trace)",
        );
    }
    rejects("compare", &["--seeds", "0"], "--seeds must be between 1 and 10000");
    rejects(
        "compare",
        &["--rule", "hebb"],
        "unknown --rule `hebb`: expected vanilla, truncated or sanger",
    );
    rejects(
        "compare",
        &["--d", "inf"],
        "compare needs a finite --d (SGD runs in dimension D)",
    );
    rejects("ode", &["--informed", "1"], "--informed takes two numbers `a,b`");
    rejects(
        "ode",
        &["--k", "4", "--informed", "1,1"],
        "--informed needs K <= M (K = 4, M = 3)",
    );
    rejects(
        "ode",
        &["--stride", "2"],
        "--patch, --stride, --format and --drop-last-column go with --data",
    );
    rejects(
        "ode",
        &["--drop-last-column"],
        "--patch, --stride, --format and --drop-last-column go with --data",
    );
    rejects("compare", &["--draw", "gaussian"], "--draw goes with --data");
    rejects("compare", &["--param", "lr=0.5"], "set lr with --lr, not --param");
    rejects("ode", &["--param", "kappa=-3"], "set kappa with --kappa, not --param");
    rejects(
        "ode",
        &["--perfect", "0.5", "--informed", "1,1"],
        "give at most one of --informed, --perfect and --weights",
    );
    rejects(
        "ode",
        &["--perfect", "0"],
        "--perfect takes a finite, non-zero encoder scale a",
    );
    rejects(
        "ode",
        &["--k", "4", "--perfect", "0.5"],
        "--perfect needs K <= M (K = 4, M = 3)",
    );
    rejects(
        "ode",
        &["--fd-jacobian", "--method", "dop853"],
        "--fd-jacobian is for --method bdf, rodas4 or auto",
    );
    rejects("ode", &["--fd-jacobian", "--method", "dopri5"], "this run uses dopri5");
    rejects(
        "ode",
        &["--equations", "reduced", "--k", "2", "--spikes", "9,3,1"],
        "give as many --spikes as --k (K = 2, 3 spikes)",
    );
    let photo = photo_path();
    rejects(
        "ode",
        &[
            "--equations",
            "full_spectrum",
            "--data",
            photo,
            "--patch",
            "8",
            "--drop-last-column",
        ],
        "--drop-last-column applies to CSV data only",
    );
    rejects(
        "ode",
        &[
            "--equations",
            "full_spectrum",
            "--data",
            photo,
            "--patch",
            "8",
            "--stride",
            "0",
        ],
        "--stride 0: the step between patches must be between 1 and 4096 pixels",
    );
    let digits = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz");
    rejects(
        "ode",
        &["--equations", "full_spectrum", "--data", digits, "--stride", "2"],
        "--stride goes with --patch (photographs)",
    );
}

fn photo_path() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/data/china.jpg")
}

#[test]
fn a_malformed_equation_file_is_reported_at_its_location() {
    let path = temp("broken.ae");
    std::fs::write(&path, "hidden k\nstate x[k] init 0\nd/dt x[k] = x[k] * (1 +\n").unwrap();
    let p = path.to_str().unwrap();
    rejects(
        "ode",
        &["--equations", p],
        &format!("{p}:4:1: expected an expression, found end of file"),
    );
}

#[test]
fn a_blow_up_is_an_error_naming_the_state_and_the_time() {
    // dx/dt = x^2 from x = 1 reaches infinity at t = 1.
    let e = breakdown(
        "blowup.ae",
        "hidden k\nstate x[k] init 1\nd/dt x[k] = x[k]^2\nobserve s = sum(k, x[k])\n",
    );
    // Whichever stepper runs, it stops where the solution blows up, at t = 1 to within its
    // tolerance.
    let t: f64 = e
        .split("t = ")
        .nth(1)
        .and_then(|rest| rest.split([':', ';', ' ']).next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    assert!(e.contains("x[0]") && (t - 1.0).abs() <= 1e-3, "{e}");
}

#[test]
fn ode_writes_a_csv_with_a_header_naming_every_column() {
    let (code, stdout, stderr) = aedyn(&[
        "ode", "--k", "2", "--spikes", "4,2", "--t-end", "2", "--points", "3", "--quiet",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.is_empty());
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        "t,eg,Q_0_0,Q_0_1,Q_1_0,Q_1_1,R_0_0,R_0_1,R_1_0,R_1_1,T_0_0,T_0_1,T_1_0,T_1_1,T0_0_0,T0_0_1,T0_1_0,T0_1_1"
    );
    assert_eq!(lines.len(), 5, "header, t = 0 and three output times");
    assert!(lines[1..].iter().all(|l| l.split(',').count() == 18));
}

#[test]
fn same_seed_same_bytes() {
    let run = || {
        aedyn(&[
            "compare", "--k", "2", "--spikes", "4,2", "--d", "100", "--t-end", "2", "--points", "3", "--seeds", "2",
            "--quiet",
        ])
        .1
    };
    let first = run();
    assert!(!first.is_empty());
    assert_eq!(first, run());
}

/// Runs a one-state equation file that breaks down and returns the error line.
fn breakdown(name: &str, equations: &str) -> String {
    let path = temp(name);
    std::fs::write(&path, equations).unwrap();
    let out = temp(&format!("{name}.csv"));
    let (code, _, stderr) = aedyn(&[
        "ode",
        "--equations",
        path.to_str().unwrap(),
        "--k",
        "1",
        "--t-end",
        "10",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(!out.exists(), "a failed run wrote its CSV");
    stderr
}

#[test]
fn a_covariance_leaving_positive_definiteness_is_named() {
    // x grows past 1, so the covariance [[1, x], [x, 1]] of I2 stops being positive definite.
    let e = breakdown(
        "pd.ae",
        "hidden k\nstate x[k] init 0.5\nd/dt x[k] = 0.2 + 0 * I2(1, x[k], 1)\nobserve s = sum(k, x[k])\n",
    );
    assert!(e.contains("dx[0]/dt became NaN at t = "), "{e}");
    assert!(
        e.contains("I2(1, x[0], 1) = NaN") && e.contains("not positive semi-definite"),
        "{e}"
    );
}

#[test]
fn a_function_leaving_its_domain_is_named() {
    let e = breakdown(
        "sqrt.ae",
        "hidden k\nstate x[k] init 1\nd/dt x[k] = 1 + sqrt(2 - x[k])\nobserve s = sum(k, x[k])\n",
    );
    assert!(
        e.contains("dx[0]/dt became NaN") && e.contains("sqrt((2 - x[0])) = NaN"),
        "{e}"
    );
    assert!(e.contains("outside the function's domain"), "{e}");
}

#[test]
fn a_non_finite_observable_is_an_error_not_a_nan_in_the_csv() {
    let e = breakdown(
        "obs.ae",
        "hidden k\nstate x[k] init 1\nd/dt x[k] = -x[k]\nobserve bad = sum(k, log(x[k] - 2))\n",
    );
    assert!(e.contains("observable bad became NaN at t = 0"), "{e}");
}

#[test]
fn ode_output_is_byte_identical_across_runs() {
    let run = || {
        aedyn(&[
            "ode", "--k", "2", "--spikes", "4,2", "--t-end", "5", "--points", "4", "--quiet",
        ])
        .1
    };
    let first = run();
    assert!(first.lines().count() == 6);
    assert_eq!(first, run());
}

#[test]
fn weights_from_a_file_give_the_same_run_as_the_seeded_draw() {
    // The file holds exactly the draw `--seed 4 --init-std 0.1` makes: both runs must agree.
    let (k, d) = (2, 50);
    let w = ae_runtime::data::Weights::random(k, d, 0.1, 4);
    let text: String =
        w.w.iter()
            .chain(&w.v)
            .map(|row| row.iter().map(|x| format!("{x:e}")).collect::<Vec<_>>().join(" ") + "\n")
            .collect();
    let path = temp("weights.txt");
    std::fs::write(&path, text).unwrap();
    let common = [
        "ode", "--k", "2", "--d", "50", "--spikes", "4,2", "--t-end", "3", "--points", "3", "--quiet",
    ];
    let from_seed = aedyn(&[&common[..], &["--seed", "4"]].concat());
    let from_file = aedyn(&[&common[..], &["--seed", "4", "--weights", path.to_str().unwrap()]].concat());
    assert_eq!(from_seed.0, 0, "{}", from_seed.2);
    assert_eq!(from_seed.1, from_file.1);
    rejects(
        "ode",
        &["--k", "2", "--d", "60", "--weights", path.to_str().unwrap()],
        "K = 2, D = 50, but the run has K = 2, D = 60",
    );
    std::fs::write(&path, "1 2\n3\n4 5\n6 7\n").unwrap();
    rejects(
        "ode",
        &["--k", "2", "--weights", path.to_str().unwrap()],
        "row 2 has 1 numbers",
    );
}

#[test]
fn the_strict_limit_runs_and_warns() {
    let (code, stdout, stderr) = aedyn(&["ode", "--d", "inf", "--t-end", "2", "--points", "2"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.starts_with("warning: --d inf is the strict limit"), "{stderr}");
    assert_eq!(stdout.lines().count(), 4);
}

#[test]
fn reduced_vs_full_rejects_bad_input_and_writes_both_files() {
    let prefix = temp("rvf");
    let p = prefix.to_str().unwrap();
    for (args, needle) in [
        (vec!["--k", "2"], "must equal the number of --spikes"),
        (vec!["--align-tol", "2"], "--align-tol"),
        (vec!["--t-reduced", "-1"], "--t-reduced"),
        (
            vec!["--t-reduced", "10", "--t-end", "100"],
            "at least the full run's end",
        ),
        (
            vec!["--k", "1", "--spikes", "4", "--data", "data/digits.csv.gz"],
            "spiked model",
        ),
    ] {
        let mut all = vec!["reduced-vs-full", "--out-prefix", p, "--quiet"];
        all.extend_from_slice(&args);
        let (code, _, stderr) = aedyn(&all);
        assert_eq!(code, 2, "{all:?}: {stderr}");
        assert!(
            stderr.contains(needle) && stderr.trim().lines().count() == 1,
            "{all:?}: {stderr}"
        );
        assert!(!std::path::Path::new(&format!("{p}_full.csv")).exists());
    }
    // K = M = 1 aligns; both CSV files appear, the summary names the derived exponents.
    let (code, _, stderr) = aedyn(&[
        "reduced-vs-full",
        "--k",
        "1",
        "--spikes",
        "4",
        "--t-end",
        "1e4",
        "--out-prefix",
        p,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("aligned at t =") && stderr.contains("alpha = 0.1667"),
        "{stderr}"
    );
    let full = std::fs::read_to_string(format!("{p}_full.csv")).unwrap();
    let reduced = std::fs::read_to_string(format!("{p}_reduced.csv")).unwrap();
    assert!(full.starts_with("t,misalignment,eg,"), "{}", &full[..40]);
    assert!(reduced.starts_with("t,eg,a_0,b_0"), "{}", &reduced[..40]);
}

#[test]
fn compare_needs_an_eg_observable() {
    for (name, text) in [
        (
            "silent.ae",
            "sgd vanilla\nhidden k\nstate x[k] init 1\nd/dt x[k] = -x[k]\n",
        ),
        (
            "other.ae",
            "sgd vanilla\nhidden k\nstate x[k] init 1\nd/dt x[k] = -x[k]\nobserve s = sum(k, x[k])\n",
        ),
    ] {
        let path = temp(name);
        std::fs::write(&path, text).unwrap();
        let p = path.to_str().unwrap();
        rejects(
            "compare",
            &["--equations", p],
            &format!("{p}: compare needs the generalisation error as a scalar observable: add `observe eg = ...`"),
        );
    }
}

#[test]
fn a_full_standard_output_is_an_error_not_a_panic() {
    // /dev/full fails every write with ENOSPC, like a full disk behind a redirection.
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        return;
    };
    for args in [
        &["reproduce", "--list"][..],
        &["reproduce", "plateaus", "--dry-run"][..],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_aedyn"))
            .args(args)
            .stdout(full.try_clone().unwrap())
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim(),
            "error: cannot write to standard output: No space left on device (os error 28)",
            "{args:?}"
        );
    }
}

#[test]
fn outputs_replace_old_files_whole_and_leave_no_temporary_files() {
    let dir = temp("atomic");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("run.csv");
    std::fs::write(&out, "old contents\n").unwrap();
    let (code, _, err) = aedyn(&[
        "ode",
        "--quiet",
        "--t-end",
        "1",
        "--points",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("t,eg,") && text.lines().count() == 5, "{text}");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // The output and its record of the run (tests/all/provenance.rs), nothing temporary.
    assert_eq!(names, ["run.csv", "run.csv.json"]);
    // A device is written, not replaced.
    let (code, _, err) = aedyn(&["ode", "--quiet", "--t-end", "1", "--out", "/dev/null"]);
    assert_eq!(code, 0, "{err}");
    assert!(!std::fs::metadata("/dev/null").unwrap().is_file());
    // A directory that does not exist: bad input found before the run (exit 2), nothing left.
    let missing = dir.join("no/such/dir/run.csv");
    let (code, _, err) = aedyn(&["ode", "--quiet", "--t-end", "1", "--out", missing.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn diverging_sgd_is_an_error_not_nan_in_the_csv() {
    // A linear autoencoder with lr = 30 at D = 50 blows up within t < 1: the SGD side turns
    // non-finite, which once went into the CSV with exit code 0.
    let out = temp("diverged.csv");
    let (code, _, stderr) = aedyn(&[
        "compare",
        "--activation",
        "linear",
        "--lr",
        "30",
        "--d",
        "50",
        "--t-end",
        "10",
        "--seeds",
        "2",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stderr}");
    let line = stderr.trim_end();
    assert!(
        // Whether the first non-finite eg is inf or NaN depends on the stream's arithmetic.
        line.starts_with("error: SGD replica 0 diverged by t = ")
            && [": eg = NaN", ": eg = inf"].iter().any(|v| line.contains(v))
            && line.ends_with(" (lr = 30; a smaller --lr keeps it finite)")
            && !line.contains('\n'),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing is written for a diverged run");
}

/// An output that is an input, or another output, is refused before anything runs, and the
/// input is left as it was.
#[test]
fn an_output_that_is_an_input_is_refused() {
    let weights = temp("weights-as-out.csv");
    let d = 20;
    let row = |x: f64| vec![format!("{x}"); d].join(",");
    let text: String = [0.1, 0.2, 0.3, 0.4].iter().map(|x| row(*x) + "\n").collect();
    std::fs::write(&weights, &text).unwrap();
    let w = weights.to_str().unwrap();
    for args in [
        vec!["ode", "--k", "2", "--d", "20", "--weights", w, "--out", w],
        vec!["compare", "--k", "2", "--d", "20", "--weights", w, "--out", w],
    ] {
        let (code, stdout, stderr) = aedyn(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty());
        assert!(
            stderr.contains("--out") && stderr.contains("is the file of --weights"),
            "{stderr}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert_eq!(
            std::fs::read_to_string(&weights).unwrap(),
            text,
            "the input was touched"
        );
    }
    // The same file reached by another name, and --overlaps on --out.
    let dir = weights.parent().unwrap();
    let other_name = dir.join(".").join(weights.file_name().unwrap());
    let (code, _, stderr) = aedyn(&[
        "ode",
        "--k",
        "2",
        "--d",
        "20",
        "--weights",
        w,
        "--out",
        other_name.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    let out = temp("both.csv");
    let (code, _, stderr) = aedyn(&[
        "compare",
        "--t-end",
        "1",
        "--out",
        out.to_str().unwrap(),
        "--overlaps",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--overlaps") && stderr.contains("is the file of --out"),
        "{stderr}"
    );
    assert!(!out.exists());
}

/// Requests that cannot finish are refused up front with the limit they exceed: a time the
/// integrator cannot resolve, and more SGD steps than months of computing.
#[test]
fn requests_that_cannot_finish_are_refused() {
    for (args, needle) in [
        (
            vec!["ode", "--t-end", "1e300"],
            "--t-end 1e300 is beyond the largest time that can be integrated (1e15)",
        ),
        (
            vec!["compare", "--t-end", "1e9", "--d", "1000"],
            "is 4.000e12 SGD steps, more than 1e12",
        ),
    ] {
        let out = temp("cannot-finish.csv");
        let mut all = args.clone();
        all.extend(["--out", out.to_str().unwrap()]);
        let (code, stdout, stderr) = aedyn(&all);
        assert_eq!(code, 2, "{all:?}: {stderr}");
        assert!(stdout.is_empty());
        assert!(stderr.contains(needle), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(!out.exists());
    }
}

/// clap's errors are one line and exit code 2 like every other bad input, and say what is
/// wrong: a missing value, an unknown option or subcommand, a repeated option.
#[test]
fn command_line_errors_are_one_line() {
    for (args, needle) in [
        (vec!["ode", "--k"], "a value is required for '--k <K>'"),
        (vec!["ode", "--bogus"], "unexpected argument '--bogus'"),
        (vec!["frobnicate"], "unrecognized subcommand 'frobnicate'"),
        (vec!["ode", "--k", "3", "--k", "4"], "cannot be used multiple times"),
        (
            vec!["ode", "--method", "euler"],
            "unknown --method `euler`: expected auto, bdf",
        ),
    ] {
        let (code, stdout, stderr) = aedyn(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty());
        assert!(
            stderr.starts_with("error: ") && stderr.contains(needle),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
    }
}

/// Requests whose planned memory exceeds the documented limit (8 GB, AEDYN_MAX_MEMORY_GB) are
/// refused before they run, with the estimate; the variable raises the limit and a bad value
/// is itself an error.
#[test]
fn requests_beyond_the_memory_limit_are_refused() {
    let out = temp("memory.csv");
    let o = out.to_str().unwrap();
    for (args, needle) in [
        (
            vec![
                "compare",
                "--k",
                "100",
                "--d",
                "1000000",
                "--seeds",
                "100",
                "--threads",
                "100",
                "--out",
                o,
            ],
            "100 SGD replicas at a time of K = 100 and D = 1000000",
        ),
        // The start's weights alone are 48 GB (this ran out of memory after a minute).
        (
            vec!["ode", "--k", "3000", "--d", "1000000", "--out", o],
            "the initial weights of K = 3000 and D = 1000000",
        ),
        (
            vec![
                "ode",
                "--k",
                "8",
                "--equations",
                "full_spectrum",
                "--d",
                "4096",
                "--points",
                "1000000",
                "--out",
                o,
            ],
            "1000001 outputs of 65572 states",
        ),
    ] {
        let (code, stdout, stderr) = aedyn(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty());
        assert!(stderr.contains(needle) && stderr.contains("GB it may use"), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(!out.exists());
    }
    let (code, _, stderr) =
        common::aedyn_with_env(&["ode", "--t-end", "1", "--out", o], &[("AEDYN_MAX_MEMORY_GB", "abc")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("AEDYN_MAX_MEMORY_GB must be a positive number"),
        "{stderr}"
    );
    // A small run under a raised or lowered limit alike.
    let (code, _, stderr) = common::aedyn_with_env(
        &["ode", "--t-end", "1", "--quiet", "--out", o],
        &[("AEDYN_MAX_MEMORY_GB", "0.5")],
    );
    assert_eq!(code, 0, "{stderr}");
}

/// `aedyn spectrum` with `args`: exit code 2, one line naming `needle`, nothing written.
fn spectrum_rejects(args: &[&str], needle: &str) {
    let out = temp("spectrum-rejected.csv");
    let _ = std::fs::remove_file(&out);
    let mut all = vec!["spectrum", "--out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = aedyn(&all);
    assert_eq!(code, 2, "{all:?}: {stderr}");
    assert!(stdout.is_empty() && !out.exists(), "{all:?} wrote output");
    assert!(
        stderr.contains(needle) && stderr.trim().lines().count() == 1,
        "{all:?}: {stderr}"
    );
}

#[test]
fn sgd_and_spectrum_refuse_what_would_do_nothing_or_cannot_run() {
    // `sgd` runs no ODE: the ODE's options would be silently ignored.
    rejects("sgd", &["--method", "bdf"], "--method is an option of the ODE");
    rejects(
        "sgd",
        &["--equations", "truncated"],
        "--equations is an option of the ODE",
    );
    rejects("sgd", &["--param", "x=1"], "--param is an option of the ODE");
    rejects(
        "sgd",
        &["--images", "4", "--test-samples", "10"],
        "--images needs --images-out FILE",
    );
    rejects(
        "sgd",
        &["--images", "4", "--images-out", "x.csv"],
        "--images shows held-out samples: give --test-samples of at least 4",
    );
    rejects(
        "sgd",
        &["--scaling", "standard", "--rule", "sanger", "--activation", "linear"],
        "--rule sanger is written in the rescaled form only",
    );
    rejects("sgd", &["--partial", "2"], "--partial is measured on a held-out set");
    rejects(
        "sgd",
        &["--partial", "4", "--test-samples", "10"],
        "--partial takes a number of neurons from 1 to K = 3",
    );
    // The ODE describes rescaled SGD: compare has no --scaling.
    rejects("compare", &["--scaling", "standard"], "unexpected argument '--scaling'");
    spectrum_rejects(&["--d", "200", "--samples", "100"], "--samples 100 is below D = 200");
    spectrum_rejects(
        &["--data", "data/digits.csv.gz", "--drop-last-column", "--samples", "100"],
        "--samples goes with the spiked model",
    );
    spectrum_rejects(
        &["--bins", "0", "--density", "/tmp/aedyn-never-density.csv"],
        "--bins must be between 1 and 100000",
    );
    spectrum_rejects(&["--d", "inf"], "spectrum needs a finite --d");
    spectrum_rejects(&["--d", "200", "--samples", "1000000000"], "GB it may use");
}

#[test]
fn standard_scaling_starts_from_weights_of_variance_one_over_d() {
    // Without --init-std, a standard run draws entries of variance 1/D, so |w_k| is about 1
    // (D = 400: within 4 standard deviations of a chi distribution, 4 / sqrt(2 D) = 0.14).
    let out = temp("standard-init.csv");
    let (code, _, err) = aedyn(&[
        "sgd",
        "--scaling",
        "standard",
        "--d",
        "400",
        "--t-end",
        "0.01",
        "--t-min",
        "0.01",
        "--points",
        "1",
        "--seeds",
        "1",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let first: Vec<f64> = text
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    for k in 0..3 {
        let norm = first[header.iter().position(|h| *h == format!("w_norm_{k}_sgd")).unwrap()];
        assert!((norm - 1.0).abs() < 0.14, "|w_{k}| = {norm}");
    }
}

/// A chosen explicit method on a run too stiff for it stops at once with the reason: `--lr
/// 1e10` used to run dop853 for minutes. A stiff stretch it can afford still runs through.
#[test]
fn a_stiff_run_with_a_chosen_explicit_method_stops_early_with_the_reason() {
    let out = temp("stiff-dop853.csv");
    let (code, stdout, stderr) = aedyn(&[
        "ode",
        "--method",
        "dop853",
        "--lr",
        "1e10",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.is_empty() && !out.exists());
    assert!(
        stderr.contains("dop853 is stability-limited at t = ")
            && stderr.contains("--method auto or bdf integrate stiff runs"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    // The default problem turns stiff too (dop853 takes 48 489 steps to t = 1000), but within
    // the step limit: it runs to the end.
    let (code, _, stderr) = aedyn(&[
        "ode",
        "--method",
        "dop853",
        "--t-end",
        "300",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
}

/// A stream with no end (`/dev/zero`) is read no further than a share of the memory limit.
#[test]
fn an_endless_data_stream_is_refused_at_its_limit() {
    let (code, stdout, stderr) = aedyn_with_env(
        &[
            "ode",
            "--equations",
            "full_spectrum",
            "--data",
            "/dev/zero",
            "--format",
            "csv",
        ],
        &[("AEDYN_MAX_MEMORY_GB", "0.1")],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("/dev/zero: size: the stream (not a regular file) holds more than 3.12 MB, the most data the limit of 100.00 MB allows"),
        "{stderr}"
    );
}
