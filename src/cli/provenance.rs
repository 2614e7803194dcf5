//! The record of a run's inputs: every option after defaults, the program's version and the
//! SHA-256 of the files it read; echoed by `--json` and written beside each output.

use clap::parser::ValueSource;
use clap::ArgMatches;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::report::stage_output;
use crate::error::RunError;

/// Options that name where a run writes or how it talks, not what it computes: a rerun of the
/// record chooses its own.
const NOT_INPUTS: &[&str] = &[
    "out",
    "overlaps",
    "density",
    "images-out",
    "out-prefix",
    "json",
    "quiet",
];

/// What a run was given, after defaults.
#[derive(Clone, Debug)]
pub struct Record {
    value: Map<String, Value>,
    /// Whether each output gets its record beside it (`reproduce` writes one for the whole
    /// experiment instead).
    beside_outputs: bool,
}

/// The file a record is written to beside `output`.
pub fn record_path(output: &str) -> String {
    format!("{output}.json")
}

/// SHA-256 of `bytes` in hex, as `sha256sum` prints it.
pub fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Record {
    /// The record of a parsed command line: the subcommand's every option (null where it has
    /// no value and none was given; the run then derives it as `--help` says), which of them
    /// were given, and the hashes of the equation and data files.
    pub(crate) fn of(matches: &ArgMatches, cli: &clap::Command) -> Record {
        let mut value = Map::new();
        value.insert("program".into(), json!("aedyn"));
        value.insert("version".into(), json!(env!("CARGO_PKG_VERSION")));
        let Some((name, sub)) = matches.subcommand() else {
            return Record {
                value,
                beside_outputs: true,
            };
        };
        value.insert("command".into(), json!(name));
        let mut options = Map::new();
        let mut given = Vec::new();
        for arg in super::subcommand_options(cli, name) {
            let id = arg.get_id().as_str();
            let key = arg.get_long().unwrap_or(id).to_string();
            let entry = if !arg.get_action().takes_values() {
                json!(sub.get_flag(id))
            } else {
                match sub.get_raw(id) {
                    Some(raw) => {
                        let values: Vec<String> = raw.map(|v| v.to_string_lossy().into_owned()).collect();
                        match values.as_slice() {
                            [one] => json!(one),
                            _ => json!(values),
                        }
                    }
                    None => Value::Null,
                }
            };
            if sub.value_source(id) == Some(ValueSource::CommandLine) {
                given.push(key.clone());
            }
            options.insert(key, entry);
        }
        let file_hash = |key: &str| options.get(key).and_then(Value::as_str).map(input_hash);
        value.insert("equations_sha256".into(), json!(file_hash("equations").flatten()));
        value.insert("data_sha256".into(), json!(file_hash("data").flatten()));
        value.insert("options".into(), Value::Object(options));
        value.insert("given".into(), json!(given));
        Record {
            value,
            beside_outputs: true,
        }
    }

    /// The same record, written once for a whole `reproduce` rather than beside each file.
    pub(crate) fn inside_experiment(mut self) -> Record {
        self.beside_outputs = false;
        self
    }

    /// A name for what this record decides, for a sweep's point files: the first 128 bits of
    /// the SHA-256 of the version, the command, every option after defaults and the input
    /// files' hashes (not which options were spelt out, nor the outputs), in hex.
    pub fn key(&self) -> String {
        let mut options = self.value.get("options").cloned().unwrap_or(Value::Null);
        if let Some(map) = options.as_object_mut() {
            map.retain(|k, _| !NOT_INPUTS.contains(&k.as_str()));
        }
        let decided = json!({
            "version": self.value.get("version"),
            "command": self.value.get("command"),
            "options": options,
            "equations_sha256": self.value.get("equations_sha256"),
            "data_sha256": self.value.get("data_sha256"),
        });
        sha256(decided.to_string().as_bytes())[..32].to_string()
    }

    pub fn to_json(&self) -> Value {
        Value::Object(self.value.clone())
    }

    /// `summary` (a JSON object) with the record's inputs added under `inputs`.
    pub(crate) fn with_summary(&self, mut summary: Value) -> Value {
        if let Some(object) = summary.as_object_mut() {
            object.insert("inputs".into(), self.to_json());
        }
        summary
    }

    /// Writes `buf` to `out` (standard output when none), atomically; a file output gets this
    /// record beside it first, so that every output file can be traced to its run.
    pub(crate) fn write_output(&self, out: &Option<String>, buf: &[u8]) -> Result<(), RunError> {
        if let Some(path) = out {
            let regular = !std::path::Path::new(path).metadata().is_ok_and(|m| !m.is_file());
            if self.beside_outputs && regular && !super::capture::active() {
                let mut record = self.to_json();
                record["output"] = json!(path);
                record["output_sha256"] = json!(sha256(buf));
                let text = serde_json::to_string_pretty(&record).map_err(|e| RunError::Io(e.to_string()))? + "\n";
                let beside = record_path(path);
                stage_output(&beside, text.as_bytes())
                    .map_err(|e| RunError::Io(format!("cannot write {beside}: {e}")))?;
            }
        }
        super::report::write_output(out, buf)
    }

    /// The command line that reruns this record with its outputs at `out_args` (without the
    /// program name): the command, then every input option that has a value.
    pub fn argv(&self, out_args: &[&str]) -> Vec<String> {
        let mut argv = vec![self.value["command"].as_str().unwrap_or_default().to_string()];
        if let Some(options) = self.value.get("options").and_then(Value::as_object) {
            for (key, value) in options {
                if NOT_INPUTS.contains(&key.as_str()) {
                    continue;
                }
                match value {
                    Value::Bool(true) => argv.push(format!("--{key}")),
                    Value::String(s) => argv.extend([format!("--{key}"), s.clone()]),
                    Value::Array(values) => {
                        for v in values.iter().filter_map(Value::as_str) {
                            argv.extend([format!("--{key}"), v.to_string()]);
                        }
                    }
                    _ => {}
                }
            }
        }
        argv.extend(out_args.iter().map(|s| s.to_string()));
        argv
    }

    /// A record read back from its JSON (what `record_path` holds).
    pub fn from_json(value: Value) -> Option<Record> {
        match value {
            Value::Object(value) if value.get("command").is_some_and(Value::is_string) => Some(Record {
                value,
                beside_outputs: true,
            }),
            _ => None,
        }
    }
}

/// SHA-256 of the file an option names: a shipped equation file's text, or the bytes of the
/// regular file at the path, read in pieces. None for a stream or device (reading it could
/// take its data from the run, or never end) or a file that cannot be read (the run reports
/// that itself).
fn input_hash(name: &str) -> Option<String> {
    if let Some(text) = crate::models::shipped_source(name) {
        return Some(sha256(text.as_bytes()));
    }
    // Asked before opening: opening a FIFO blocks until a writer comes.
    if !std::fs::metadata(name).ok()?.is_file() {
        return None;
    }
    let mut file = std::fs::File::open(name).ok()?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).ok()?;
    Some(hex(&hasher.finalize()))
}
