//! Every citation of the mathematics points at a section that exists: code, equation files,
//! experiments, `--help`, tests, README and the docs cite `docs/theory.md section N`, and the
//! file must have a heading `## N.` for each N cited.

use std::path::{Path, PathBuf};

/// Files that may cite the theory: sources, equations, experiments, docs, Python.
fn cited_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()) {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !matches!(name.as_str(), "target" | ".git" | "results" | "node_modules" | ".venv") {
                cited_files(&path, out);
            }
        } else if ["rs", "ae", "toml", "md", "py", "pyi", "snap"]
            .iter()
            .any(|e| path.extension().is_some_and(|x| x == *e))
        {
            out.push(path);
        }
    }
}

/// The section numbers after each `theory.md` in `text` (`section 6`, `sections 2 and 9`,
/// `sections 4-6`, across a comment's line break), with the line they are on.
fn citations(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices("theory.md") {
        let rest = &text[at + "theory.md".len()..];
        // Whitespace and comment markers between the file and the word `section`.
        let rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/' || c == '!' || c == '#');
        let Some(rest) = rest.strip_prefix("sections").or_else(|| rest.strip_prefix("section")) else {
            continue;
        };
        let line = text[..at].lines().count().max(1);
        let list: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || matches!(c, ' ' | ',' | '-' | 'a' | 'n' | 'd'))
            .collect();
        let numbers: Vec<usize> = list
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect();
        if list.contains('-') && numbers.len() == 2 {
            out.extend((numbers[0]..=numbers[1]).map(|n| (line, n)));
        } else {
            out.extend(numbers.into_iter().map(|n| (line, n)));
        }
    }
    out
}

#[test]
fn every_cited_theory_section_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let theory = std::fs::read_to_string(root.join("docs/theory.md")).unwrap();
    let sections: Vec<usize> = theory
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .filter_map(|l| l.split('.').next()?.parse().ok())
        .collect();
    let mut files = Vec::new();
    cited_files(root, &mut files);
    let mut cited = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (line, n) in citations(&text) {
            assert!(
                sections.contains(&n),
                "{}:{line}: docs/theory.md has no section {n}",
                file.display()
            );
            cited += 1;
        }
        // The former reference lived outside the repository, where users could not read it
        // (this file names it to look for it).
        if file.ends_with("tests/all/citations.rs") {
            continue;
        }
        let old = ["SPEC section", "SPEC.md", "SPEC sections", "(SPEC)", "SPEC:"];
        if let Some(o) = old.iter().find(|o| text.contains(*o)) {
            panic!("{}: cites `{o}`, which is not in the repository", file.display());
        }
    }
    // The scan finds the citations the code base is known to make (about 90).
    assert!(cited > 50, "only {cited} citations found: the scan is broken");
}

#[test]
fn the_citation_scan_reads_lists_ranges_and_broken_lines() {
    let text = "a (docs/theory.md section 6) b\n// docs/theory.md\n// sections 2 and 9, c\ndocs/theory.md sections 4-6";
    assert_eq!(citations(text), vec![(1, 6), (2, 2), (2, 9), (4, 4), (4, 5), (4, 6)]);
}

/// GitHub's anchor of a heading: lower case, spaces to hyphens, punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every relative link of README and the docs names a file that exists and, with `#`, one of
/// its headings.
#[test]
fn every_documentation_link_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap().filter_map(|e| e.ok()) {
        if entry.path().extension().is_some_and(|e| e == "md") {
            pages.push(entry.path());
        }
    }
    let mut checked = 0;
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        for (at, _) in text.match_indices("](") {
            let target: String = text[at + 2..].chars().take_while(|c| *c != ')').collect();
            if target.starts_with("http") || target.is_empty() {
                continue;
            }
            let (file, fragment) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target.as_str(), None),
            };
            let path = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            assert!(path.exists(), "{}: link to {target}: no such file", page.display());
            if let Some(fragment) = fragment {
                let headings = std::fs::read_to_string(&path).unwrap();
                let found = headings
                    .lines()
                    .filter_map(|l| {
                        l.trim_start_matches('#')
                            .strip_prefix(' ')
                            .filter(|_| l.starts_with('#'))
                    })
                    .any(|h| anchor(h) == fragment);
                assert!(found, "{}: link to {target}: no such heading", page.display());
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} links found");
}
