//! Hostile input, round 3 (with pairing.rs, signals.rs and memory_limits.rs): tolerances the integrators cannot honour,
//! numbers no run may report, options that would do nothing, a failing standard error, and
//! data files whose rows or bytes were lost or refused.

use crate::common::{aedyn, fifo, file_names, refused, temp};

/// An experiment of one quick run, `r`.
const ONE_QUICK_RUN: &str =
    "title = \"t\"\nabout = \"a\"\n[[run]]\nname = \"r\"\ncommand = \"ode\"\nargs = { k = 1, t-end = 1 }\n";

#[test]
fn tolerances_are_bounded_to_what_the_integrators_honour() {
    // Measured before: --rtol 10 with dop853 reported eg = -88411, --rtol 1e308 5.3e6, and
    // --atol 1e308 with rodas4 -1672, each with exit 0.
    refused(
        &["ode", "--rtol", "10", "--method", "dop853"],
        "--rtol 1e1: at most 0.01",
    );
    refused(&["ode", "--rtol", "1e308"], "at most 0.01");
    refused(
        &["ode", "--atol", "1e308", "--method", "rodas4"],
        "--atol 1e308: at most 0.01",
    );
    refused(&["ode", "--rtol", "1e-17"], "--rtol 1e-17: at least 1e-14");
    refused(&["ode", "--rtol", "0"], "must be positive");
}

#[test]
fn a_run_whose_numbers_break_what_must_hold_is_an_error_naming_the_quantity_and_time() {
    // A file whose eg goes negative, and one whose Q has a negative diagonal: the run stops at
    // the first breach, not with a CSV of impossible numbers.
    for (observables, needle) in [
        ("observe eg = sum(k, x[k]) - 1.5", "eg = -"),
        ("observe Q[k, l] = -x[k] * x[l]", "Q[0,0] = -1e0 at t = 0e0"),
    ] {
        let file = temp("impossible.ae");
        std::fs::write(
            &file,
            format!("hidden k\nhidden l\nstate x[k] init 1\nd/dt x[k] = -x[k]\n{observables}\n"),
        )
        .unwrap();
        let out = temp("impossible.csv");
        let (code, _, err) = aedyn(&[
            "ode",
            "--equations",
            file.to_str().unwrap(),
            "--k",
            "2",
            "--t-end",
            "5",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains(needle) && err.contains("at t = ") && err.contains("cannot be trusted"),
            "{err}"
        );
        assert!(!out.exists(), "no CSV of impossible numbers");
    }
}

#[test]
fn options_that_would_do_nothing_are_refused() {
    refused(
        &["compare", "--bias-init", "0.3", "--t-end", "1"],
        "--bias-init sets the trained biases' start: give --bias",
    );
    refused(
        &["spectrum", "--bins", "30"],
        "--bins sets the histogram of the --density file",
    );
    refused(&["reproduce", "plateaus", "--out-dir", ""], "--out-dir is empty");
    let path = temp("no-runs.toml");
    std::fs::write(
        &path,
        "title = \"t\"\nabout = \"a\"\n[[run]]\nname = \"r\"\ncommand = \"ode\"\nargs = { k = 1 }\n[[plot]]\nfile = \"p\"\nkind = \"eg\"\ntitle = \"p\"\nruns = []\n",
    )
    .unwrap();
    refused(
        &["reproduce", path.to_str().unwrap(), "--dry-run"],
        "an empty list draws nothing",
    );
}

#[test]
fn a_failing_standard_error_changes_no_outcome() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        return;
    };
    // Diagnostics into a full stderr: the good run still succeeds, bad input is still 2.
    for (args, expected) in [
        (vec!["ode", "--k", "1", "--t-end", "1", "--out", "/dev/null"], 0),
        (vec!["ode", "--k", "0"], 2),
        (vec!["reproduce", "plateaus", "--dry-run"], 0),
    ] {
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_aedyn"))
            .args(&args)
            .stderr(full.try_clone().unwrap())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(expected), "{args:?}");
    }
}

/// With standard output closed (`>&-`), what was meant for it is an error (exit 1), as for a
/// closed pipe, not lost with exit 0: a `--json` summary, and a CSV without `--out`. Standard
/// output on /dev/null is open, so it is written there as asked.
#[test]
fn a_closed_standard_output_is_an_error_and_dev_null_is_not() {
    let out = temp("closed-stdout.csv");
    let out = out.to_str().unwrap();
    let run = |redirect: &str, args: &[&str]| {
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("exec \"$0\" \"$@\" {redirect}"))
            .arg(env!("CARGO_BIN_EXE_aedyn"))
            .args(args)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let json = ["ode", "--k", "1", "--t-end", "1", "--quiet", "--json", "--out", out];
    let csv = ["ode", "--k", "1", "--t-end", "1", "--quiet"];
    for args in [&json[..], &csv[..]] {
        let (code, err) = run(">&-", args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(err.contains("standard output") && err.contains("closed"), "{err}");
        let (code, err) = run(">/dev/null", args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
    }
    // The summary was not printed, so the CSV was not kept either (all outputs or none).
    std::fs::remove_file(out).ok();
    let (code, _) = run(">&-", &json);
    assert_eq!(code, Some(1));
    assert!(!std::path::Path::new(out).exists());
}

fn load_file(
    name: &str,
    bytes: &[u8],
    options: ae_runtime::data::LoadOptions,
) -> Result<ae_runtime::data::Samples, String> {
    let path = temp(name);
    std::fs::write(&path, bytes).unwrap();
    ae_runtime::data::load(path.to_str().unwrap(), &options).map_err(|e| e.to_string())
}

fn csv(name: &str, text: &str) -> Result<Vec<Vec<f64>>, String> {
    load_file(name, text.as_bytes(), Default::default()).map(|s| s.rows)
}

#[test]
fn no_csv_row_is_dropped_for_a_header() {
    // A header is one first line whose fields are all names, as many as the data's.
    assert_eq!(csv("h1.csv", "a,b,c\n1,2,3\n4,5,6\n").unwrap().len(), 2);
    assert_eq!(
        csv("h2.csv", "\u{feff}a,b,c\n1,2,3\n").unwrap(),
        vec![vec![1.0, 2.0, 3.0]],
        "a BOM is skipped"
    );
    assert_eq!(csv("h3.csv", "\u{feff}1,2\n3,4\n").unwrap().len(), 2);
    // A first row with a number of any spelling is data, and refused where it is not finite.
    for first in ["nan,1,2", "inf,1,2", "-Infinity,1,2", "1e999,1,2", "NaN,x,y"] {
        let err = csv("h4.csv", &format!("{first}\n1,2,3\n")).unwrap_err();
        assert!(
            err.contains("line 1") && err.contains("not a finite number"),
            "{first}: {err}"
        );
    }
    let err = csv("h5.csv", "0x1f,a,b\n1,2,3\n").unwrap_err();
    assert!(err.contains("line 1"), "hex is a number: {err}");
    // Only one header: a second line of names is data.
    let err = csv("h6.csv", "a,b,c\nd,e,f\n1,2,3\n").unwrap_err();
    assert!(err.contains("line 2") && err.contains("`d`"), "{err}");
    // A header must name every column.
    let err = csv("h7.csv", "a,b\n1,2,3\n").unwrap_err();
    assert!(
        err.contains("line 1") && err.contains("a header of 2 names over rows of 3 values"),
        "{err}"
    );
}

#[test]
fn gzip_files_are_read_whole_and_nothing_else_passes_for_gzip() {
    let member = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz")).unwrap();
    let one = load_file("one.csv.gz", &member, Default::default()).unwrap().rows.len();
    assert_eq!(one, 1797);
    let two = [member.clone(), member.clone()].concat();
    assert_eq!(
        load_file("two.csv.gz", &two, Default::default()).unwrap().rows.len(),
        2 * one,
        "both members"
    );
    let err = load_file(
        "tail.csv.gz",
        &[member.clone(), b"garbage".to_vec()].concat(),
        Default::default(),
    )
    .unwrap_err();
    assert!(err.contains("7 bytes after the gzip data that are not gzip"), "{err}");
    let err = load_file("plain.csv.gz", b"1,2\n3,4\n", Default::default()).unwrap_err();
    assert!(err.contains("not gzip data"), "{err}");
}

#[test]
fn a_whole_jpeg_with_bytes_after_its_end_is_read_and_a_cut_one_is_not() {
    let jpeg = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/data/china.jpg")).unwrap();
    let options = || ae_runtime::data::LoadOptions {
        patch: Some(8),
        ..Default::default()
    };
    let whole = load_file("whole.jpg", &jpeg, options()).unwrap();
    let appended = load_file(
        "appended.jpg",
        &[jpeg.clone(), b"appended by some tool".to_vec()].concat(),
        options(),
    )
    .unwrap();
    assert_eq!(whole.rows, appended.rows);
    let err = load_file("cut.jpg", &jpeg[..jpeg.len() / 2], options()).unwrap_err();
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn outputs_that_could_never_be_written_are_bad_input_found_before_the_run() {
    let dir = temp("unwritable");
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("no/such/dir/x.csv");
    refused(
        &["ode", "--t-end", "1", "--out", missing.to_str().unwrap()],
        "does not exist",
    );
    refused(
        &["ode", "--t-end", "1", "--out", dir.to_str().unwrap()],
        "is a directory",
    );
    refused(&["ode", "--t-end", "1", "--out", ""], "--out is empty");
    // A compare whose second output cannot be written leaves no first output either.
    let out = dir.join("cmp.csv");
    refused(
        &[
            "compare",
            "--t-end",
            "1",
            "--d",
            "100",
            "--out",
            out.to_str().unwrap(),
            "--overlaps",
            missing.to_str().unwrap(),
        ],
        "--overlaps",
    );
    assert!(!out.exists());
    refused(
        &[
            "reduced-vs-full",
            "--k",
            "1",
            "--spikes",
            "4",
            "--out-prefix",
            missing.to_str().unwrap(),
        ],
        "does not exist",
    );
}

#[test]
fn runs_of_an_experiment_never_write_over_each_other_or_over_an_input() {
    let dir = temp("collide-out");
    for (runs, needle) in [
        (
            "[[run]]\nname = \"r1\"\ncommand = \"compare\"\nargs = { t-end = 1, d = 100 }\n[[run]]\nname = \"r1_overlaps\"\ncommand = \"ode\"\nargs = { t-end = 1 }\n",
            "runs `r1` and `r1_overlaps` both write",
        ),
        (
            "[[run]]\nname = \"r1\"\ncommand = \"reduced-vs-full\"\nargs = { k = 1, spikes = [4] }\n[[run]]\nname = \"r1_full\"\ncommand = \"ode\"\nargs = { t-end = 1 }\n",
            "runs `r1` and `r1_full` both write",
        ),
        (
            &format!(
                "[[run]]\nname = \"a\"\ncommand = \"ode\"\nargs = {{ t-end = 1 }}\n[[run]]\nname = \"b\"\ncommand = \"ode\"\nargs = {{ equations = \"full_spectrum\", data = {:?} }}\n",
                dir.join("a.csv").to_str().unwrap()
            )[..],
            "run `b`: its data",
        ),
    ] {
        let path = temp("collide.toml");
        std::fs::write(&path, format!("title = \"t\"\nabout = \"a\"\n{runs}")).unwrap();
        refused(&["reproduce", path.to_str().unwrap(), "--out-dir", dir.to_str().unwrap()], needle);
        assert!(!dir.exists(), "{needle}: nothing may be written");
    }
}

#[test]
fn staging_folders_of_dead_processes_are_removed_on_the_next_run() {
    // A reproduce killed by a signal leaves `.staging-PID`; the next run into the directory
    // removes those whose process is gone, and keeps a live one's.
    let dir = temp("stale-staging");
    let dead = dir.join(".staging-4194303"); // the largest pid Linux allows: no live process here
    let live = dir.join(format!(".staging-{}", std::process::id()));
    std::fs::create_dir_all(&dead).unwrap();
    std::fs::create_dir_all(&live).unwrap();
    std::fs::write(dead.join("half.csv"), "t,eg\n").unwrap();
    let path = temp("stale.toml");
    std::fs::write(&path, ONE_QUICK_RUN).unwrap();
    let (code, _, err) = aedyn(&[
        "reproduce",
        path.to_str().unwrap(),
        "--out-dir",
        dir.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!dead.exists(), "the dead process's staging folder is gone");
    assert!(live.exists(), "a live process's staging folder is kept");
    assert!(dir.join("r.csv").exists());
}

#[test]
fn files_read_whole_must_be_regular_and_may_start_with_a_bom() {
    // A FIFO without a writer blocked `--weights` forever; every file read whole is refused
    // unless it is a regular file (data files are streams and keep their own limits).
    let (f, t) = (fifo("reader.fifo"), fifo("reader-fifo.toml"));
    let (f, t) = (f.to_str().unwrap(), t.to_str().unwrap());
    refused(&["ode", "--weights", f, "--d", "100"], "cannot read --weights");
    refused(&["ode", "--equations", f], "not a regular file");
    refused(&["reproduce", t], "cannot read experiment file");
    refused(&["sweep", t, "--out-dir", "x"], "cannot read sweep file");
    // A byte-order mark is skipped in every text format, as in CSV data.
    let bom = |name: &str, text: &str| {
        let path = temp(name);
        std::fs::write(&path, format!("\u{feff}{text}")).unwrap();
        path.to_str().unwrap().to_string()
    };
    let vanilla = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/equations/vanilla.ae")).unwrap();
    let equations = bom("bom.ae", &vanilla);
    let experiment = bom("bom.toml", ONE_QUICK_RUN);
    let out = temp("bom-out");
    for args in [
        vec!["ode", "--equations", &equations, "--t-end", "1", "--quiet"],
        vec!["reproduce", &experiment, "--out-dir", out.to_str().unwrap(), "--quiet"],
    ] {
        let (code, _, err) = aedyn(&args);
        assert_eq!(code, 0, "{args:?}: {err}");
    }
}

#[test]
fn a_summary_that_cannot_be_printed_leaves_no_output() {
    // `--json` into a full device used to leave the CSV (exit 1): outputs are now staged and
    // moved into place only after the summary is out, so a file there before stays as it was.
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        return;
    };
    let dir = temp("summary-fails");
    std::fs::create_dir_all(&dir).unwrap();
    let old = dir.join("old.csv");
    std::fs::write(&old, "t,eg\n0,1\n").unwrap();
    let (new, prefix) = (dir.join("new.csv"), dir.join("pair"));
    for args in [
        vec!["ode", "--t-end", "1", "--json", "--out", new.to_str().unwrap()],
        vec!["ode", "--t-end", "1", "--json", "--out", old.to_str().unwrap()],
        vec!["compare", "--t-end", "1", "--json", "--out", new.to_str().unwrap()],
        vec![
            "reduced-vs-full",
            "--k",
            "1",
            "--spikes",
            "4",
            "--t-end",
            "1e4",
            "--json",
            "--out-prefix",
            prefix.to_str().unwrap(),
        ],
    ] {
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_aedyn"))
            .args(&args)
            .stdout(full.try_clone().unwrap())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(1), "{args:?}");
        assert_eq!(file_names(&dir), ["old.csv"], "{args:?}");
        assert_eq!(std::fs::read_to_string(&old).unwrap(), "t,eg\n0,1\n");
    }
}

#[test]
fn a_dash_for_out_means_standard_output_not_a_file_named_dash() {
    let dir = temp("dash-out");
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_aedyn"))
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("runs")
    };
    let dashed = run(&["ode", "--k", "1", "--t-end", "1", "--quiet", "--out", "-"]);
    let plain = run(&["ode", "--k", "1", "--t-end", "1", "--quiet"]);
    assert!(dashed.status.success(), "{}", String::from_utf8_lossy(&dashed.stderr));
    assert!(!dashed.stdout.is_empty());
    assert_eq!(dashed.stdout, plain.stdout);
    assert!(file_names(&dir).is_empty(), "{:?}", file_names(&dir));
    // With --json the summary takes standard output, so the CSV cannot go there too.
    let json = run(&["ode", "--k", "1", "--t-end", "1", "--json", "--out", "-"]);
    assert_eq!(json.status.code(), Some(2));
}
