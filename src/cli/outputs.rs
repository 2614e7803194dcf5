//! Output paths checked against the inputs and each other before a run: a file that a run
//! reads, or writes twice, is never overwritten.

use super::args::{DataArgs, ModelArgs};
use crate::error::{input, RunError};

/// Where a file is or would be, for telling whether two names mean one file (the output need
/// not exist yet; its directory usually does).
fn resolved(path: &str) -> std::path::PathBuf {
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
