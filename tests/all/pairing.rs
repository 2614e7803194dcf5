//! A file's columns are named once, and `compare` pairs a file only with the SGD it says it
//! describes (hostile input, round 3, part 2).

use crate::common::{aedyn, ode_csv, refused, temp};
use std::collections::HashSet;

/// `equations/vanilla.ae` with `edit` applied, written under `name`.
fn vanilla_with(name: &str, edit: impl Fn(String) -> String) -> String {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/equations/vanilla.ae")).unwrap();
    let path = temp(name);
    std::fs::write(&path, edit(text)).unwrap();
    path.to_str().unwrap().to_string()
}

/// The line of `needle`'s first occurrence in `path` (1-based).
fn line_of(path: &str, needle: &str) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    1 + text.lines().position(|l| l.starts_with(needle)).unwrap()
}

#[test]
fn every_column_of_a_shipped_file_with_its_states_is_named_once() {
    // vanilla.ae observes T0 beside its state T0: the state's entries are written once, as
    // the observable's columns, and every other state entry keeps its own column.
    for (equations, k) in [
        ("vanilla", "2"),
        ("truncated", "3"),
        ("density", "2"),
        ("full_spectrum", "2"),
    ] {
        let args = [
            "--equations",
            equations,
            "--k",
            k,
            "--t-end",
            "1",
            "--points",
            "3",
            "--states",
        ];
        let (header, rows) = ode_csv(&args, &format!("states-{equations}.csv"));
        let unique: HashSet<&String> = header.iter().collect();
        assert_eq!(unique.len(), header.len(), "{equations}: {header:?}");
        assert!(rows.iter().all(|r| r.len() == header.len()));
        if equations == "vanilla" {
            for column in ["T0_0_1", "T0_1_0", "Qb_0_1", "omega_1_0", "varpi_0_2"] {
                assert!(header.iter().any(|h| h == column), "{column} in {header:?}");
            }
        }
    }
}

#[test]
fn a_column_named_twice_is_an_error_at_the_line_that_names_it_second() {
    let cases = [
        (
            "observe t = 1",
            "observable `t` writes the column `t`, as the output's own column does",
        ),
        (
            "observe Qb[k, l] = 2 * Qb[k, l]",
            "observable `Qb` writes the column `Qb_0_0`, as `--states`' column of state `Qb` (line 20) does",
        ),
        (
            "observe Q_0[k] = Q[k, k]",
            "observable `Q_0` writes the column `Q_0_0`, as observable `Q` (line",
        ),
    ];
    for (i, (observable, message)) in cases.into_iter().enumerate() {
        let file = vanilla_with(&format!("clash{i}.ae"), |text| format!("{text}{observable}\n"));
        let line = line_of(&file, observable);
        refused(
            &[
                "ode",
                "--equations",
                &file,
                "--out",
                temp("clash.csv").to_str().unwrap(),
            ],
            &format!("{file}:{line}:9: {message}"),
        );
    }
}

#[test]
fn compare_runs_the_sgd_rule_the_file_names_and_refuses_another() {
    let run = |name: &str, extra: &[&str]| {
        let out = temp(name);
        let mut args = vec![
            "compare", "--quiet", "--k", "2", "--d", "200", "--t-end", "5", "--points", "4",
        ];
        args.extend_from_slice(&["--out", out.to_str().unwrap()]);
        args.extend_from_slice(extra);
        let (code, _, err) = aedyn(&args);
        assert_eq!(code, 0, "{args:?}: {err}");
        std::fs::read_to_string(out).unwrap()
    };
    // equations/truncated.ae says `sgd truncated`: without --rule compare runs that rule, so
    // the output is the one of --rule truncated to the byte...
    let implied = run("implied.csv", &["--equations", "truncated"]);
    assert_eq!(
        implied,
        run("explicit.csv", &["--equations", "truncated", "--rule", "truncated"])
    );
    // ...and not the one of vanilla SGD: the same seeds under the vanilla rule train the second
    // unit differently, so the SGD columns differ.
    let sgd_column = |csv: &str, name: &str| -> Vec<String> {
        let mut lines = csv.lines();
        let j = lines.next().unwrap().split(',').position(|c| c == name).unwrap();
        lines.map(|l| l.split(',').nth(j).unwrap().to_string()).collect()
    };
    let vanilla = run("vanilla.csv", &["--equations", "vanilla"]);
    assert_ne!(sgd_column(&implied, "Q_1_1_sgd"), sgd_column(&vanilla, "Q_1_1_sgd"));

    refused(
        &["compare", "--equations", "truncated", "--rule", "vanilla"],
        "--rule vanilla: equations/truncated.ae:10 says its equations describe truncated SGD",
    );
    refused(
        &["compare", "--rule", "sanger", "--activation", "linear"],
        "--rule sanger: equations/vanilla.ae:8 says its equations describe vanilla SGD",
    );
}

#[test]
fn compare_refuses_a_file_that_does_not_say_its_sgd_and_parameters_sgd_lacks() {
    let silent = vanilla_with("silent.ae", |text| text.replace("\nsgd vanilla ", "\n# "));
    refused(
        &["compare", "--equations", &silent],
        "does not say which SGD its equations describe, so compare cannot pair them with the simulator: add a line `sgd vanilla`",
    );
    // The new user's decoder-only decay: compare printed ODE 1.15 against SGD 0.66 with exit 0,
    // the SGD side knowing nothing of kappa_v.
    let decay = vanilla_with("decay.ae", |text| {
        text.replace("param kappa = 0 ", "param kappa = 0\nparam kappa_v = 0 ")
            .replace("- kappa * varpi[k; tau]", "- (kappa + kappa_v) * varpi[k; tau]")
    });
    refused(
        &["compare", "--equations", &decay, "--param", "kappa_v=0.1"],
        "--param kappa_v=...: the SGD simulator has no parameter `kappa_v`",
    );
    // The ODE alone takes it.
    let (code, _, err) = aedyn(&[
        "ode",
        "--equations",
        &decay,
        "--param",
        "kappa_v=0.1",
        "--t-end",
        "1",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    // An unknown SGD rule is an error in the file, at its place.
    let hebb = vanilla_with("hebb.ae", |text| text.replace("\nsgd vanilla ", "\nsgd hebb "));
    refused(
        &["ode", "--equations", &hebb],
        &format!("{hebb}:8:5: unknown SGD rule `hebb`: the simulator runs vanilla, truncated, sanger"),
    );
}

#[test]
fn the_language_names_every_rule_of_the_simulator_and_no_other() {
    // ae-dsl cannot depend on the simulator, so it keeps its own list of `sgd` rules; compare
    // turns a declared name into the simulator's rule, which must always succeed.
    use clap::ValueEnum;
    let simulator: Vec<String> = ae_runtime::sgd::Rule::value_variants()
        .iter()
        .filter_map(|r| Some(r.to_possible_value()?.get_name().to_string()))
        .collect();
    assert_eq!(simulator, ae_dsl::ir::SGD_RULES);
}
