//! Output paths checked against the inputs and each other before a run: a file that a run
//! reads, or writes twice, is never overwritten.

use super::args::{DataArgs, ModelArgs};
use crate::error::{input, RunError};

/// Where a file is or would be, for telling whether two names mean one file (the output need
/// not exist yet; its directory usually does).
pub(crate) fn resolved(path: &str) -> std::path::PathBuf {
    let p = std::path::Path::new(path);
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    let parent = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    match (parent.canonicalize(), p.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => p.to_path_buf(),
    }
}

/// Refuses an output file that is an input (`--weights`, `--data`, an `--equations` file) or
/// another output: it would be overwritten while or before it is read.
pub(crate) fn check_outputs(model: &ModelArgs, outputs: &[(&str, Option<&String>)]) -> Result<(), RunError> {
    let mut inputs: Vec<(&str, &str)> = Vec::new();
    if let Some(w) = &model.weights {
        inputs.push(("--weights", w));
    }
    if std::path::Path::new(&model.equations).is_file() {
        inputs.push(("--equations", &model.equations));
    }
    check_output_names(&model.data, &inputs, outputs)
}

/// `check_outputs` for a command whose only inputs are the data and `inputs`.
pub(crate) fn check_output_names(
    data: &DataArgs,
    inputs: &[(&str, &str)],
    outputs: &[(&str, Option<&String>)],
) -> Result<(), RunError> {
    let mut named: Vec<(&str, &str)> = inputs.to_vec();
    if let Some(d) = &data.data {
        named.push(("--data", d));
    }
    for (option, path) in outputs.iter().filter_map(|(o, p)| p.map(|p| (*o, p.as_str()))) {
        check_writable(option, path)?;
        let target = resolved(path);
        if let Some((other, _)) = named.iter().find(|(_, q)| resolved(q) == target) {
            return input(format!(
                "{option} {path} is the file of {other}: writing it would destroy what the run reads (choose another file)"
            ));
        }
        named.push((option, path));
    }
    Ok(())
}

/// Refuses, before the run, an output that could never be written: an empty name, a
/// directory, or a file in a directory that does not exist. (A device such as /dev/null is
/// written in place. A captured run writes nothing, so its names are not looked at.)
fn check_writable(option: &str, path: &str) -> Result<(), RunError> {
    if super::capture::active() {
        return Ok(());
    }
    let p = std::path::Path::new(path);
    if path.is_empty() {
        return input(format!("{option} is empty: name a file"));
    }
    if p.is_dir() {
        return input(format!("{option} {path} is a directory: name a file in it"));
    }
    let parent = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    if !parent.is_dir() {
        return input(format!(
            "{option} {path}: the directory {} does not exist",
            parent.display()
        ));
    }
    Ok(())
}
