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

/// Spellings of numbers that a first row may hold: every one makes the row data, never a
/// header, whether or not it parses as a finite number.
const NUMBER_SPELLINGS: [&str; 14] = [
    "1",
    "-2.5",
    "+3",
    ".5",
    "1e-3",
    "nan",
    "NaN",
    "inf",
    "-Infinity",
    "infinity",
    "1e999",
    "0x1F",
    "-0",
    "7E+2",
];

fn first_rows() -> impl Strategy<Value = Vec<String>> {
    // Three fields, as the data below have; each a number's spelling or a word.
    prop::collection::vec(
        prop_oneof![
            (0..NUMBER_SPELLINGS.len()).prop_map(|i| NUMBER_SPELLINGS[i].to_string()),
            "[a-z]{1,6}",
        ],
        3,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn a_first_row_with_a_number_is_never_dropped_as_a_header(first in first_rows(), bom in any::<bool>()) {
        // Data rows 2-4 of valid.csv under a mutated first row (and perhaps a BOM): a row with
        // any number in it is data, so it is loaded or refused, and a row of words alone is
        // the header. Nothing else may come of it (the bug: `nan,1,2` vanished, exit 0).
        let text = format!("{}{}\n1,2,3\n4,5,6.5\n7,8,10\n", if bom { "\u{feff}" } else { "" }, first.join(","));
        let has_number = first.iter().any(|f| NUMBER_SPELLINGS.contains(&f.as_str()));
        let result = outcome("first-row.csv", text.as_bytes(), 0).map_err(TestCaseError::fail)?;
        match result {
            Ok(((rows, 3), _)) => prop_assert_eq!(rows, if has_number { 4 } else { 3 }, "{}", text),
            Ok((shape, _)) => prop_assert!(false, "{:?} from {}", shape, text),
            Err(e) => prop_assert!(has_number, "a header of words was refused: {} ({})", e, text),
        }
    }
}
