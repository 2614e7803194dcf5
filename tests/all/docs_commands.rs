//! The commands of README and the docs run as written: every fenced block marked
//! `sh runnable` is run by `sh -e` in a fresh directory that sees the repository's
//! `equations/` and `data/`, with `aedyn` on the PATH. Sizes are cut where a block would take
//! long (the commands, options and files are what is checked, not the numbers): `--t-end` of
//! `sgd` and `compare` runs at most 10, `--samples` at most 1000, `--test-samples` at most 200.

use std::path::Path;

use crate::common::temp;

/// The runnable blocks of `page`: (line of the fence, the block's text).
fn runnable_blocks(page: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, Vec<&str>)> = None;
    for (i, line) in page.lines().enumerate() {
        match &mut current {
            None if line.trim() == "```sh runnable" => current = Some((i + 1, Vec::new())),
            Some((at, body)) if line.trim() == "```" => {
                out.push((*at, body.join("\n")));
                current = None;
            }
            Some((_, body)) => body.push(line),
            None => {}
        }
    }
    out
}

/// `line` with its sizes cut as the module doc says.
fn small(line: &str) -> String {
    let words: Vec<&str> = line.split(' ').collect();
    let sgd = words.first() == Some(&"aedyn") && matches!(words.get(1), Some(&"sgd") | Some(&"compare"));
    let mut out = Vec::new();
    let mut previous = "";
    for w in words {
        let limit = match previous {
            "--t-end" if sgd => Some(10.0),
            "--samples" => Some(1000.0),
            "--test-samples" => Some(200.0),
            _ => None,
        };
        match (w.parse::<f64>(), limit) {
            (Ok(v), Some(limit)) if v > limit => out.push(limit.to_string()),
            _ => out.push(w.to_string()),
        }
        previous = w;
    }
    out.join(" ")
}

#[test]
fn documented_commands_run_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let binary = Path::new(env!("CARGO_BIN_EXE_aedyn"));
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = 0;
    for page in ["README.md", "docs/guide.md"] {
        let text = std::fs::read_to_string(root.join(page)).unwrap();
        for (line, block) in runnable_blocks(&text) {
            let dir = temp(&format!("docs-{}-{line}", page.replace('/', "-")));
            std::fs::create_dir_all(&dir).unwrap();
            for shared in ["equations", "data"] {
                let link = dir.join(shared);
                if !link.exists() {
                    std::os::unix::fs::symlink(root.join(shared), link).unwrap();
                }
            }
            let script: Vec<String> = block.lines().map(small).collect();
            let out = std::process::Command::new("sh")
                .arg("-e")
                .arg("-c")
                .arg(script.join("\n"))
                .current_dir(&dir)
                .env("PATH", &path)
                .output()
                .expect("sh runs");
            assert!(
                out.status.success(),
                "{page}:{line}: {}\n{}",
                script.join("\n"),
                String::from_utf8_lossy(&out.stderr)
            );
            ran += 1;
        }
    }
    assert!(ran >= 9, "only {ran} runnable blocks found");
}

#[test]
fn the_block_scan_and_the_size_cut_work() {
    let page = "x\n```sh runnable\naedyn sgd --t-end 2e5 --out a.csv\n```\n```sh\nnot this\n```\n";
    assert_eq!(
        runnable_blocks(page),
        vec![(2, "aedyn sgd --t-end 2e5 --out a.csv".to_string())]
    );
    assert_eq!(
        small("aedyn sgd --t-end 2e5 --out a.csv"),
        "aedyn sgd --t-end 10 --out a.csv"
    );
    assert_eq!(small("aedyn spectrum --samples 4000"), "aedyn spectrum --samples 1000");
    assert_eq!(small("aedyn ode --t-end 1000"), "aedyn ode --t-end 1000");
}
