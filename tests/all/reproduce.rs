//! `aedyn reproduce`: the shipped experiment files are valid, bad files are errors naming the
//! file, line and key, and a small experiment writes its CSV files, plots and JSON summary.

use crate::common;

use common::{aedyn, aedyn_with_env, temp};

#[test]
fn every_shipped_experiment_parses_into_valid_runs() {
    let (code, list, err) = aedyn(&["reproduce", "--list"]);
    assert_eq!(code, 0, "{err}");
    let names: Vec<&str> = list.lines().filter_map(|l| l.split_whitespace().next()).collect();
    // Every file of the folder is listed, and nothing else.
    let mut files: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/experiments"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix(".toml")
                .map(str::to_string)
        })
        .collect();
    files.sort();
    let mut listed: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    listed.sort();
    assert_eq!(listed, files);
    // In the order of the paper's figures, each named.
    assert_eq!(names.first(), Some(&"spectrum"), "{list}");
    assert!(list.lines().all(|l| l.contains("figure ")), "{list}");
    for name in names {
        // --dry-run parses every run's options with the real command-line parser.
        let (code, out, err) = aedyn(&["reproduce", name, "--dry-run"]);
        assert_eq!(code, 0, "{name}: {err}");
        assert!(
            out.lines().count() >= 1 && out.lines().all(|l| l.starts_with("aedyn ")),
            "{out}"
        );
    }
}

#[test]
fn all_runs_every_shipped_experiment_each_into_its_directory() {
    let root = temp("all");
    let (code, out, err) = aedyn(&["reproduce", "--all", "--dry-run", "--out-dir", root.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (_, list, _) = aedyn(&["reproduce", "--list"]);
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let dir = format!("{}/{name}/", root.display());
        assert!(out.lines().any(|l| l.contains(&dir)), "no run writes into {dir}");
    }
    // A dry run writes nothing.
    assert!(!root.exists());
    let (code, _, err) = aedyn(&["reproduce", "plateaus", "--all"]);
    assert_eq!(code, 2);
    assert!(err.contains("give an experiment's name or --all, not both"), "{err}");
}

/// Writes `text` as an experiment file and runs it; the error must be one line, exit code 2,
/// naming `file:line` and containing `needle`.
fn rejects(text: &str, line: usize, needle: &str) {
    let path = temp(&format!("bad-{}.toml", needle.replace([' ', '`', '/', ':'], "_")));
    std::fs::write(&path, text).unwrap();
    let p = path.to_str().unwrap();
    let (code, _, err) = aedyn(&["reproduce", p, "--out-dir", temp("never").to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{p}:{line}:")), "expected line {line}: {err}");
    assert!(err.contains(needle), "expected `{needle}`: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!temp("never").exists(), "wrote output for a bad file");
}

const HEAD: &str = "title = \"t\"\nabout = \"a\"\n\n[[run]]\nname = \"x\"\ncommand = \"ode\"\n";

#[test]
fn bad_experiment_files_name_the_key_and_line() {
    rejects(&format!("{HEAD}[run.args]\nk = 2\nbogus = 1\n"), 9, "key `bogus`");
    rejects(&format!("{HEAD}[run.args]\nk = \"two\"\n"), 8, "key `k`");
    // A negative value is a value, not an option of its own: the error names its key and line.
    rejects(
        &format!("{HEAD}[run.args]\nt-end = 1\nk = -1\n"),
        9,
        "key `k`: invalid value '-1'",
    );
    rejects(
        &format!("{HEAD}[run.args]\nk = 2\nlr = -1\n"),
        9,
        "--lr must be positive",
    );
    rejects(
        &format!("{HEAD}args = {{ k = 2, lr = -1 }}\n"),
        7,
        "--lr must be positive",
    );
    rejects(&format!("{HEAD}[run.args]\nout = \"x.csv\"\n"), 8, "key `out`");
    rejects(&format!("{HEAD}colour = 1\n"), 7, "unknown field `colour`");
    rejects(&HEAD.replace("\"ode\"", "\"odes\""), 6, "unknown command `odes`");
    rejects(
        &format!("{HEAD}\n[[plot]]\nfile = \"p\"\nkind = \"eg\"\ntitle = \"p\"\nruns = [\"y\"]\n"),
        10,
        "no run is called `y`",
    );
    rejects(
        &format!("{HEAD}\n[[plot]]\nfile = \"p\"\nkind = \"pie\"\ntitle = \"p\"\nruns = []\n"),
        10,
        "key `kind`: unknown plot kind `pie`: expected eg, excess, columns, overlaps, spectrum, reconstructions or decoders",
    );
    // A plot over runs whose files it cannot read is found before anything runs.
    for (kind, reads) in [
        ("excess", "reduced-vs-full"),
        ("overlaps", "compare"),
        ("spectrum", "spectrum"),
        ("reconstructions", "sgd"),
    ] {
        rejects(
            &format!("{HEAD}\n[[plot]]\nfile = \"p\"\nkind = \"{kind}\"\ntitle = \"p\"\nruns = [\"x\"]\n"),
            10,
            &format!("key `runs`: `{kind}` plots read the output of {reads}, but run `x` runs ode"),
        );
    }
    // The columns a plot reads are checked against those its runs will write, before any run.
    rejects(
        &format!("{HEAD}args = {{ k = 2, t-end = 1 }}\n\n[[plot]]\nfile = \"p\"\nkind = \"columns\"\ntitle = \"p\"\nruns = [\"x\"]\ncolumns = [\"Q_0_0\", \"bogus\"]\n"),
        14,
        "key `columns`: run `x` will write no column `bogus` (its columns: t, eg, ",
    );
    rejects(
        &format!("{HEAD}args = {{ k = 2, t-end = 1 }}\n\n[[plot]]\nfile = \"p\"\nkind = \"eg\"\ntitle = \"p\"\nruns = [\"x\"]\npca_ranks = [2]\n"),
        14,
        "key `pca_ranks`: run `x` will write no column `eg_pca_2`",
    );
    // Image plots need runs that keep images.
    let sgd = HEAD.replace("\"ode\"", "\"sgd\"");
    rejects(
        &format!("{sgd}\n[[plot]]\nfile = \"p\"\nkind = \"decoders\"\ntitle = \"p\"\nruns = [\"x\"]\n"),
        10,
        "key `runs`: `decoders` plots draw the images of `sgd --images`, but run `x` keeps none",
    );
    // Plot files stay inside the output directory.
    for file in ["../../x", "/tmp/x", "", "..", "a/b"] {
        rejects(
            &format!("{HEAD}\n[[plot]]\nfile = \"{file}\"\nkind = \"eg\"\ntitle = \"p\"\nruns = [\"x\"]\n"),
            9,
            &format!("key `file`: `{file}` must be letters, digits, -, _ or . (a name, not a path)"),
        );
    }
    rejects(
        &format!("{HEAD}\n[[plot]]\nfile = \"p\"\nkind = \"eg\"\ntitle = \"p\"\nruns = [\"x\"]\n\n[[plot]]\nfile = \"p\"\nkind = \"eg\"\ntitle = \"q\"\nruns = [\"x\"]\n"),
        15,
        "key `file`: two plots write `p`",
    );
}

fn is_png(path: &std::path::Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.len() > 5000 && b.starts_with(b"\x89PNG"))
}

#[test]
fn a_small_experiment_writes_csv_plots_and_json() {
    let path = temp("small.toml");
    std::fs::write(
        &path,
        r#"title = "small"
about = "an ODE and a comparison, briefly"

[[run]]
name = "ode"
command = "ode"
args = { k = 2, spikes = [4, 1], t-end = 10, points = 20 }

[[run]]
name = "cmp"
command = "compare"
args = { k = 2, spikes = [4, 1], d = 200, t-end = 2, t-min = 0.1, points = 5, seeds = 2 }

[[plot]]
file = "eg"
kind = "eg"
title = "eg"
runs = ["cmp", "ode"]
log_y = true

[[plot]]
file = "q"
kind = "columns"
title = "Q"
runs = ["cmp"]
columns = ["Q_0_0_ode", "Q_0_0_sgd"]

[[plot]]
file = "overlaps"
kind = "overlaps"
title = "overlaps"
runs = ["cmp"]
"#,
    )
    .unwrap();
    let dir = temp("small-out");
    // A bar would show at once on a terminal (`progress_bars_show_on_a_terminal_only`).
    let (code, out, err) = aedyn_with_env(
        &[
            "reproduce",
            path.to_str().unwrap(),
            "--out-dir",
            dir.to_str().unwrap(),
            "--json",
        ],
        &[("AEDYN_PROGRESS_AFTER", "0")],
    );
    assert_eq!(code, 0, "{err}");
    let summary: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object on stdout");
    assert_eq!(summary["experiment"], "small");
    let files = summary["files"].as_array().unwrap();
    // Three CSV files, three plots in two formats, and the experiment's record.
    assert_eq!(files.len(), 3 + 6 + 1, "{files:?}");
    for f in files {
        assert!(std::path::Path::new(f.as_str().unwrap()).exists(), "{f}");
    }
    for stem in ["eg", "q", "overlaps"] {
        assert!(is_png(&dir.join(format!("{stem}.png"))), "{stem}.png");
        let svg = std::fs::read_to_string(dir.join(format!("{stem}.svg"))).unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"), "{stem}.svg");
    }
    // stderr is a pipe here, not a terminal: no progress bar was drawn.
    assert!(!err.contains("[=") && !err.contains("=>"), "{err}");
    // One record for the experiment, none beside its files.
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("experiment.json")).unwrap()).unwrap();
    assert_eq!(
        record["file_sha256"],
        aedyn::cli::provenance::sha256(&std::fs::read(&path).unwrap())
    );
    let runs = record["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1]["inputs"]["options"]["d"], "200");
    assert!(!dir.join("cmp.csv.json").exists());
    let overlaps = std::fs::read_to_string(dir.join("cmp_overlaps.csv")).unwrap();
    assert!(overlaps.starts_with("replica,unit,spike_0,spike_1\n"), "{overlaps}");
    assert_eq!(overlaps.lines().count(), 1 + 2 * 2);
}

/// Runs `aedyn args` with its standard error on a pseudo-terminal (util-linux `script`, which
/// copies what the terminal shows to its own standard output) or on a pipe, with progress bars
/// allowed from the start; returns what stderr received.
fn stderr_of(args: &[&str], on_terminal: bool) -> String {
    if !on_terminal {
        let (code, _, err) = aedyn_with_env(args, &[("AEDYN_PROGRESS_AFTER", "0")]);
        assert_eq!(code, 0, "{err}");
        return err;
    }
    let line = std::iter::once(env!("CARGO_BIN_EXE_aedyn"))
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let out = std::process::Command::new("script")
        .args(["-qec", &format!("{line} >/dev/null"), "/dev/null"])
        .env("AEDYN_PROGRESS_AFTER", "0")
        .env("TERM", "xterm")
        .output()
        .expect("util-linux `script` runs (it provides the pseudo-terminal)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn progress_bars_show_on_a_terminal_only() {
    // Long enough for several progress updates (40 000 SGD steps per replica, measured after
    // every output time).
    let args = [
        "compare", "--d", "200", "--t-end", "200", "--points", "20", "--seeds", "2",
    ];
    let terminal = stderr_of(&args, true);
    assert!(terminal.contains("SGD steps") && terminal.contains("=>"), "{terminal}");
    let pipe = stderr_of(&args, false);
    assert!(!pipe.contains("SGD steps") && !pipe.contains("=>"), "{pipe}");
    // The summary line is there either way.
    assert!(pipe.contains("eg ODE"), "{pipe}");
    let quiet = stderr_of(&[&args[..], &["--quiet"]].concat(), true);
    assert!(!quiet.contains("SGD steps"), "{quiet}");
}

#[test]
fn json_summaries_need_the_csv_in_a_file() {
    let (code, _, err) = aedyn(&["ode", "--json", "--t-end", "1"]);
    assert_eq!(code, 2);
    assert!(err.contains("--json") && err.contains("--out"), "{err}");
    let out = temp("ode.csv");
    let (code, stdout, err) = aedyn(&[
        "ode",
        "--json",
        "--t-end",
        "1",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(
        v["eg"].as_f64().is_some_and(|e| e > 0.0) && v["backend"] == "generated",
        "{v}"
    );
}

/// A run that fails at run time leaves the output directory as it was (its runs write into a
/// staging directory whose files move into place only when every run and plot has
/// succeeded); a successful one replaces the old files and leaves no staging directory.
#[test]
fn a_failed_experiment_leaves_the_output_directory_as_it_was() {
    let dir = temp("staged-out");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("first.csv"), "old").unwrap();
    let first = "[[run]]\nname = \"first\"\ncommand = \"ode\"\nargs = { t-end = 1, points = 3 }\n";
    // Linear SGD at lr 30 diverges (exit code 1) after validation has passed.
    let failing = "[[run]]\nname = \"second\"\ncommand = \"compare\"\nargs = { activation = \"linear\", lr = 30, d = 50, t-end = 10, seeds = 2 }\n";
    let names = |dir: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let path = temp("failing.toml");
    let reproduce = |runs: &str| {
        std::fs::write(&path, format!("title = \"t\"\nabout = \"a\"\n\n{runs}")).unwrap();
        let (code, _, err) = aedyn(&[
            "reproduce",
            path.to_str().unwrap(),
            "--out-dir",
            dir.to_str().unwrap(),
            "--quiet",
        ]);
        (code, err)
    };
    let (code, err) = reproduce(&format!("{first}\n{failing}"));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("diverged"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.join("first.csv")).unwrap(), "old");
    assert_eq!(names(&dir), ["first.csv"]);

    let (code, err) = reproduce(first);
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::read_to_string(dir.join("first.csv"))
        .unwrap()
        .starts_with("t,"));
    // The run's file and the experiment's record.
    assert_eq!(names(&dir), ["experiment.json", "first.csv"]);
}

/// The columns `reproduce` predicts for a run before running it are those the run writes.
#[test]
fn predicted_columns_are_the_written_ones() {
    let read_header = |path: &std::path::Path| -> Vec<String> {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines().next().unwrap().split(',').map(String::from).collect()
    };
    let (main, second) = (temp("predicted.csv"), temp("predicted-second.csv"));
    let outputs = format!("--out {} --density {}", main.display(), second.display());
    let digits = "--data data/digits.csv.gz --drop-last-column";
    let sgd = "--k 2 --d 50 --t-end 1 --seeds 1";
    for (command, args) in [
        ("ode", "--k 2 --t-end 1 --states".to_string()),
        ("ode", format!("--equations full_spectrum {digits} --k 2 --t-end 1")),
        ("compare", format!("{sgd} --test-samples 20 --partial 1")),
        ("compare", format!("--equations truncated --rule truncated {sgd}")),
        ("sgd", sgd.to_string()),
        (
            "sgd",
            format!("{digits} --k 10 --t-end 1 --seeds 1 --scaling standard --lr 1e-3"),
        ),
        ("spectrum", "--d 40".to_string()),
        ("spectrum", digits.to_string()),
    ] {
        let mut all: Vec<&str> = vec![command];
        all.extend(args.split_whitespace());
        // Only spectrum writes a second file that plots read (--density).
        let files = if command == "spectrum" {
            outputs.clone()
        } else {
            format!("--out {}", main.display())
        };
        all.extend(files.split_whitespace());
        let predicted = aedyn::cli::predicted_columns(&all).unwrap_or_else(|e| panic!("{all:?}: {e}"));
        all.push("--quiet");
        let (code, _, err) = aedyn(&all);
        assert_eq!(code, 0, "{all:?}: {err}");
        assert_eq!(predicted.main, read_header(&main), "{all:?}");
        if let Some(columns) = predicted.second {
            assert_eq!(columns, read_header(&second), "{all:?}");
        }
    }
    let prefix = temp("predicted-reduced");
    let line = format!(
        "reduced-vs-full --k 1 --spikes 4 --t-end 1e3 --t-reduced 1e4 --out-prefix {}",
        prefix.display()
    );
    let args: Vec<&str> = line.split_whitespace().collect();
    let predicted = aedyn::cli::predicted_columns(&args).unwrap();
    let (code, _, err) = aedyn(&[&args[..], &["--quiet"]].concat());
    assert_eq!(code, 0, "{err}");
    let file = |suffix: &str| std::path::PathBuf::from(format!("{}{suffix}", prefix.display()));
    assert_eq!(predicted.main, read_header(&file("_full.csv")));
    assert_eq!(predicted.second.unwrap(), read_header(&file("_reduced.csv")));
}
