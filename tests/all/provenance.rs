//! Provenance: every output file has the record of the run that made it beside it, `--json`
//! echoes the same inputs, and rerunning a record's options reproduces the file bit for bit.

use crate::common::{aedyn, temp};

use aedyn::cli::provenance::{record_path, sha256, Record};

/// Runs `args` writing `name`, then reads the record written beside it.
fn run_with_record(args: &[&str], name: &str) -> (std::path::PathBuf, serde_json::Value) {
    let out = temp(name);
    let mut all = args.to_vec();
    all.extend(["--quiet", "--out", out.to_str().unwrap()]);
    let (code, _, err) = aedyn(&all);
    assert_eq!(code, 0, "{all:?}: {err}");
    let text = std::fs::read_to_string(record_path(out.to_str().unwrap())).expect("a record beside the output");
    (out, serde_json::from_str(&text).expect("the record is JSON"))
}

#[test]
fn records_hold_every_option_after_defaults_and_rerun_bit_for_bit() {
    for (args, name) in [
        (
            &[
                "ode",
                "--k",
                "2",
                "--t-end",
                "5",
                "--points",
                "6",
                "--activation",
                "relu",
            ][..],
            "p-ode.csv",
        ),
        (
            &[
                "compare", "--k", "2", "--d", "150", "--t-end", "2", "--points", "4", "--seeds", "2",
            ][..],
            "p-cmp.csv",
        ),
        (&["spectrum", "--d", "100", "--samples", "400"][..], "p-spec.csv"),
    ] {
        let (out, record) = run_with_record(args, name);
        let options = &record["options"];
        assert_eq!(record["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(record["command"], args[0]);
        // Given options as given, the others at their defaults.
        assert_eq!(
            options["d"],
            if args[0] == "ode" {
                "1000"
            } else {
                args[args.iter().position(|a| *a == "--d").unwrap() + 1]
            }
        );
        assert!(
            record["given"].as_array().unwrap().iter().any(|g| g == "quiet"),
            "{record}"
        );
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(record["output_sha256"], sha256(&bytes));
        if args[0] != "spectrum" {
            assert_eq!(options["lr"], "1");
            let shipped = aedyn::models::shipped_source("vanilla").unwrap();
            assert_eq!(record["equations_sha256"], sha256(shipped.as_bytes()));
        }
        // Rerun from the record alone: the same bytes.
        let again = temp(&format!("again-{name}"));
        let argv = Record::from_json(record)
            .unwrap()
            .argv(&["--quiet", "--out", again.to_str().unwrap()]);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let (code, _, err) = aedyn(&argv);
        assert_eq!(code, 0, "{argv:?}: {err}");
        assert_eq!(
            std::fs::read(&again).unwrap(),
            bytes,
            "{argv:?} did not reproduce {name}"
        );
    }
}

#[test]
fn json_summaries_echo_the_inputs_and_records_trace_a_users_file() {
    let file = temp("prov-own.ae");
    let text = aedyn::models::shipped_source("vanilla")
        .unwrap()
        .replace("omega[", "om[");
    std::fs::write(&file, &text).unwrap();
    let out = temp("prov-own.csv");
    let args = [
        "ode",
        "--equations",
        file.to_str().unwrap(),
        "--k",
        "2",
        "--t-end",
        "3",
        "--points",
        "3",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ];
    let (code, stdout, err) = aedyn(&args);
    assert_eq!(code, 0, "{err}");
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let inputs = &summary["inputs"];
    assert_eq!(inputs["equations_sha256"], sha256(text.as_bytes()));
    assert_eq!(inputs["options"]["k"], "2");
    assert_eq!(inputs["options"]["t-end"], "3");
    assert_eq!(inputs["options"]["lr"], "1");
    // The record beside the CSV is the summary's inputs plus the output's name and hash.
    let beside: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(record_path(out.to_str().unwrap())).unwrap()).unwrap();
    assert_eq!(beside["options"], inputs["options"]);
    assert_eq!(beside["output"], out.to_str().unwrap());
}

#[test]
fn no_record_is_written_beside_a_device_or_standard_output() {
    // /dev/null.json would be a file in /dev; standard output has no name to put one beside.
    let (code, _, err) = aedyn(&[
        "ode",
        "--k",
        "1",
        "--t-end",
        "1",
        "--points",
        "2",
        "--quiet",
        "--out",
        "/dev/null",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!std::path::Path::new("/dev/null.json").exists());
}
