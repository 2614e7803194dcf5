//! The house rules of the code base, checked: no file of the application crate longer than 500
//! lines, no function anywhere longer than 120 (generated code aside), and the subcommands that
//! write files are the command line's.

use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 500;
const MAX_FUNCTION_LINES: usize = 120;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()) {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn no_file_of_the_application_is_longer_than_500_lines() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    for file in files {
        let lines = std::fs::read_to_string(&file).unwrap().lines().count();
        assert!(lines <= MAX_FILE_LINES, "{}: {lines} lines", file.display());
    }
}

/// The length of every function: from its `fn` line to the closing brace at the same
/// indentation (the code is formatted by rustfmt, so braces close where they open).
fn function_lengths(text: &str) -> Vec<(usize, usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let head = trimmed
            .trim_start_matches("pub ")
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ")
            .trim_start_matches("const ")
            .trim_start_matches("unsafe ")
            .trim_start_matches("extern \"C\" ");
        let Some(rest) = head.strip_prefix("fn ") else { continue };
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        // The body opens on the signature's last line; a declaration without one ends in `;`.
        let Some(open) =
            (i..lines.len()).find(|&j| lines[j].trim_end().ends_with('{') || lines[j].trim_end().ends_with(';'))
        else {
            continue;
        };
        if lines[open].trim_end().ends_with(';') {
            continue;
        }
        let close = format!("{indent}}}");
        if let Some(end) = (open + 1..lines.len()).find(|&j| lines[j] == close) {
            out.push((i + 1, end - i + 1, name));
        }
    }
    out
}

#[test]
fn no_function_is_longer_than_120_lines() {
    let mut files = Vec::new();
    for dir in [
        "src",
        "ae-core/src",
        "ae-dsl/src",
        "ae-jit/src",
        "ae-macros/src",
        "ae-runtime/src",
        "kernels/src",
    ] {
        rust_files(&root().join(dir), &mut files);
    }
    let mut checked = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, length, name) in function_lengths(&text) {
            // Functions inside `quote!` blocks are the generated code's, not the generator's.
            let in_quote = text.lines().nth(line - 1).is_some_and(|l| l.contains('#'));
            assert!(
                length <= MAX_FUNCTION_LINES || in_quote,
                "{}:{line}: fn {name} is {length} lines",
                file.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 500, "found only {checked} functions: the scan is broken");
}

#[test]
fn the_function_scan_measures_what_it_should() {
    let text = "fn a() {\n    1\n}\n\n    pub(crate) fn b(\n        x: u8,\n    ) -> u8 {\n        x\n    }\nfn c();\n";
    let found = function_lengths(text);
    assert_eq!(found, [(1, 3, "a".to_string()), (5, 5, "b".to_string())]);
}

/// Every subcommand that writes files (what experiments and sweeps name) is a subcommand of
/// the command line under the same name.
#[test]
fn every_run_command_is_a_subcommand() {
    use aedyn::names::Named;
    for command in aedyn::schema::RunCommand::ALL {
        let (code, out, err) = crate::common::aedyn(&[command.name(), "--help"]);
        assert_eq!(code, 0, "{}: {err}", command.name());
        assert!(out.contains("Usage: aedyn"), "{out}");
    }
}
