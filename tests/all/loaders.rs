//! Property ("fuzz") tests of every data loader: the corpus in `tests/corpus/loaders/` (valid
//! seeds and the hostile inputs of issue 13), as it is and after random edits, cuts and
//! appends, gives a value or an error, never a panic; loaded data are finite and rectangular.
//! CI runs proptest's default 256 cases; `PROPTEST_CASES=100000 cargo test --release --test
//! all loaders::` runs a long campaign.

use ae_runtime::data::{load, LoadOptions, RealData};
use proptest::prelude::*;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/loaders");

/// The corpus files (name, bytes), in name order.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(CORPUS)
        .expect("the corpus directory")
        .map(|e| e.expect("a corpus entry").path())
        .filter(|p| p.extension().is_none_or(|e| e != "md"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// The options a file's format needs (photographs: patches), under a budget of 64 MB so that
/// a declared size is refused long before it costs the test machine anything.
fn options_for(name: &str) -> LoadOptions {
    let image = name.ends_with(".png") || name.ends_with(".jpg");
    LoadOptions {
        patch: image.then_some(4),
        stride: image.then_some(2),
        max_bytes: Some(64 << 20),
        ..LoadOptions::default()
    }
}

/// What loading a file gave: the samples' shape, or the loader's error; and, for data small
/// enough to diagonalise here, whether standardising them succeeded (Err: its message).
type Outcome = Result<((usize, usize), Option<Result<(), String>>), String>;

/// Loads `bytes` as a file called `name` (Err: the panic's message).
fn outcome(name: &str, bytes: &[u8], case: u64) -> Result<Outcome, String> {
    let dir = crate::common::temp("loaders");
    std::fs::create_dir_all(&dir).unwrap();
    // The file keeps its name's ending, which decides the format.
    let path = dir.join(format!("{case}-{name}"));
    std::fs::write(&path, bytes).unwrap();
    let path = path.to_string_lossy().into_owned();
    let result = std::panic::catch_unwind(|| -> Outcome {
        let samples = load(&path, &options_for(name)).map_err(|e| e.to_string())?;
        for row in &samples.rows {
            assert_eq!(row.len(), samples.d, "a ragged row was loaded");
            assert!(row.iter().all(|v| v.is_finite()), "a non-finite value was loaded");
        }
        let shape = (samples.rows.len(), samples.d);
        // Standardising and diagonalising must not panic either.
        let standardised = (samples.d <= 256).then(|| RealData::new(samples).map(|_| ()).map_err(|e| e.to_string()));
        Ok((shape, standardised))
    });
    let _ = std::fs::remove_file(&path);
    result.map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

#[test]
fn every_corpus_file_loads_or_is_an_error_as_it_is() {
    let files = corpus();
    assert!(files.len() >= 20, "the corpus has {} files", files.len());
    for (i, (name, bytes)) in files.iter().enumerate() {
        let result = outcome(name, bytes, i as u64).unwrap_or_else(|panic| panic!("{name} panicked: {panic}"));
        // The seeds load; the hostile files are refused, by the loader or (an empty file, no
        // samples) when the samples are standardised.
        match (name.starts_with("valid"), &result) {
            (true, Ok(((n, d), _))) => assert!(*n > 0 && *d > 0, "{name}: {n} x {d}"),
            (false, Err(_)) | (false, Ok((_, Some(Err(_))))) => {}
            _ => panic!("{name}: {result:?}"),
        }
    }
}

/// A random edit of a corpus file: byte overwrites, then an optional cut and appended bytes.
#[derive(Debug, Clone)]
struct Edit {
    file: usize,
    overwrites: Vec<(usize, u8)>,
    cut: Option<usize>,
    append: Vec<u8>,
}

fn edits() -> impl Strategy<Value = Edit> {
    (
        any::<usize>(),
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        prop::option::weighted(0.3, any::<usize>()),
        prop::collection::vec(any::<u8>(), 0..4),
    )
        .prop_map(|(file, overwrites, cut, append)| Edit {
            file,
            overwrites,
            cut,
            append,
        })
}

proptest! {
    // The default configuration reads PROPTEST_CASES (256 when unset).
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn edited_corpus_files_never_panic(edit in edits()) {
        let files = corpus();
        let (name, original) = &files[edit.file % files.len()];
        let mut bytes = original.clone();
        for (at, value) in &edit.overwrites {
            if !bytes.is_empty() {
                let len = bytes.len();
                bytes[at % len] = *value;
            }
        }
        if let Some(cut) = edit.cut {
            bytes.truncate(cut % (bytes.len() + 1));
        }
        bytes.extend_from_slice(&edit.append);
        let case = edit.file as u64 ^ (edit.overwrites.len() as u64) << 32;
        let result = outcome(name, &bytes, case);
        prop_assert!(result.is_ok(), "{} edited by {:?} panicked: {:?}", name, edit, result);
    }
}
