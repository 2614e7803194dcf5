//! The memory a run may plan to hold, and the check every job makes before it allocates.

use crate::error::{input, RunError};

/// The memory a run may plan to hold, in GB, unless the machine or `AEDYN_MAX_MEMORY_GB`
/// allows less.
pub const DEFAULT_MAX_MEMORY_GB: f64 = 8.0;

/// The share of the machine's real limit that a run may plan to hold: the estimates leave out
/// the program, its threads' stacks, the allocator's slack and short-lived copies.
const SHARE_OF_REAL_LIMIT: f64 = 0.6;

/// What bounds the memory of a run: bytes, and what imposes them.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub bytes: f64,
    pub source: String,
}

/// The memory budget: `AEDYN_MAX_MEMORY_GB` (a positive number) or 8 GB, lowered to a share of
/// the smallest real limit of this process (address space and data size from `ulimit`, the
/// control group's `memory.max`, the available memory), each less what is in use already.
pub fn budget() -> Result<Budget, RunError> {
    let mut budget = match std::env::var("AEDYN_MAX_MEMORY_GB") {
        Err(_) => Budget {
            bytes: DEFAULT_MAX_MEMORY_GB * 1e9,
            source: "the default limit (set AEDYN_MAX_MEMORY_GB to change it)".into(),
        },
        Ok(v) => match v.trim().parse::<f64>() {
            Ok(gb) if gb.is_finite() && gb > 0.0 => Budget {
                bytes: gb * 1e9,
                source: "AEDYN_MAX_MEMORY_GB".into(),
            },
            _ => {
                return input(format!(
                    "AEDYN_MAX_MEMORY_GB must be a positive number of GB, got `{v}`"
                ))
            }
        },
    };
    for (free, what) in recent_limits() {
        let share = SHARE_OF_REAL_LIMIT * free;
        if share < budget.bytes {
            budget = Budget {
                bytes: share,
                source: format!(
                    "{:.0}% of what {what} leaves free ({:.2} GB)",
                    SHARE_OF_REAL_LIMIT * 100.0,
                    free / 1e9
                ),
            };
        }
    }
    Ok(budget)
}

/// The error for a buffer of `bytes` whose reservation failed (a blind spot of the estimate):
/// `what` names it.
pub fn cannot_hold(what: &str, bytes: f64) -> RunError {
    RunError::Io(format!(
        "cannot hold {what} ({:.2} GB) in the memory this process can have",
        bytes / 1e9
    ))
}

/// The limit in bytes (see [`budget`]).
pub fn memory_limit_bytes() -> Result<f64, RunError> {
    Ok(budget()?.bytes)
}

/// Refuses a request whose estimated memory, `bytes`, exceeds the budget; `what` says what it
/// holds.
pub fn check_memory(bytes: f64, what: &str) -> Result<(), RunError> {
    let budget = budget()?;
    if bytes > budget.bytes {
        return input(format!(
            "this run would hold about {:.2} GB ({what}), more than the {:.2} GB it may use: {}",
            bytes / 1e9,
            budget.bytes / 1e9,
            budget.source
        ));
    }
    Ok(())
}

/// [`real_limits`], read again at most once a second: a sweep asks before every point, and
/// reading /proc and the control groups each time took 7% of a sweep of 4 ms points.
fn recent_limits() -> Vec<(f64, String)> {
    type Recent = Option<(std::time::Instant, Vec<(f64, String)>)>;
    static RECENT: std::sync::Mutex<Recent> = std::sync::Mutex::new(None);
    let mut recent = RECENT.lock().unwrap_or_else(|e| e.into_inner());
    match &*recent {
        Some((read, limits)) if read.elapsed() < std::time::Duration::from_secs(1) => limits.clone(),
        _ => {
            let limits = real_limits();
            *recent = Some((std::time::Instant::now(), limits.clone()));
            limits
        }
    }
}

/// The bytes each real limit leaves free, and what the limit is. Linux only (elsewhere none is
/// found, and the budget is the default).
fn real_limits() -> Vec<(f64, String)> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let mut limits = Vec::new();
    if let (Some(limits_text), Some(status)) = (read("/proc/self/limits"), read("/proc/self/status")) {
        for (label, used, what) in [
            ("Max address space", "VmSize:", "the address-space limit (ulimit -v)"),
            ("Max data size", "VmData:", "the data-size limit (ulimit -d)"),
        ] {
            if let (Some(limit), Some(in_use)) = (soft_limit(&limits_text, label), kib_field(&status, used)) {
                limits.push(((limit - in_use).max(0.0), what.to_string()));
            }
        }
    }
    if let Some(cgroup) = read("/proc/self/cgroup") {
        limits.extend(cgroup_limits(&cgroup, &|path| read(path)));
    }
    if let Some(available) = read("/proc/meminfo").and_then(|m| kib_field(&m, "MemAvailable:")) {
        limits.push((available, "the available memory (MemAvailable)".to_string()));
    }
    limits
}

/// The soft limit on the line of `/proc/self/limits` that starts with `label`, in bytes
/// (None when unlimited).
fn soft_limit(limits: &str, label: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with(label))?;
    line[label.len()..].split_whitespace().next()?.parse().ok()
}

/// A `Name:   123 kB` field of `/proc/self/status` or `/proc/meminfo`, in bytes.
fn kib_field(text: &str, key: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: f64 = line[key.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024.0)
}

/// What the cgroup v2 `memory.max` of this process's group and of each group above it leaves
/// free (`memory.max` less `memory.current`); `read` reads a file.
fn cgroup_limits(cgroup: &str, read: &dyn Fn(&str) -> Option<String>) -> Vec<(f64, String)> {
    let Some(mut group) = cgroup.lines().find_map(|l| l.strip_prefix("0::")).map(str::to_string) else {
        return Vec::new();
    };
    let mut limits = Vec::new();
    loop {
        let dir = format!("/sys/fs/cgroup{}", group.trim_end_matches('/'));
        let number = |name: &str| read(&format!("{dir}/{name}")).and_then(|t| t.trim().parse::<f64>().ok());
        if let (Some(max), Some(current)) = (number("memory.max"), number("memory.current")) {
            limits.push((
                (max - current).max(0.0),
                format!("the control group's memory.max ({dir})"),
            ));
        }
        match group.rfind('/') {
            _ if group == "/" => break,
            Some(0) => group = "/".to_string(),
            Some(i) => group.truncate(i),
            None => break,
        }
    }
    limits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_read_from_the_proc_files_formats() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max data size             unlimited            unlimited            bytes\n\
                      Max address space         3072000000           unlimited            bytes\n";
        assert_eq!(soft_limit(limits, "Max address space"), Some(3_072_000_000.0));
        assert_eq!(soft_limit(limits, "Max data size"), None);
        assert_eq!(
            kib_field("VmPeak:\t  10 kB\nVmSize:\t 1000 kB\n", "VmSize:"),
            Some(1_024_000.0)
        );
    }

    #[test]
    fn every_control_group_up_to_the_root_bounds_the_memory() {
        let files = |path: &str| -> Option<String> {
            match path {
                "/sys/fs/cgroup/job/step/memory.max" => Some("max\n".into()),
                "/sys/fs/cgroup/job/step/memory.current" => Some("100\n".into()),
                "/sys/fs/cgroup/job/memory.max" => Some("3000\n".into()),
                "/sys/fs/cgroup/job/memory.current" => Some("1000\n".into()),
                _ => None,
            }
        };
        let limits = cgroup_limits("0::/job/step\n", &files);
        assert_eq!(limits.len(), 1, "{limits:?}");
        assert_eq!(limits[0].0, 2000.0);
        assert!(limits[0].1.contains("/sys/fs/cgroup/job)"));
        assert!(cgroup_limits("1:memory:/x\n", &files).is_empty());
    }

    #[test]
    fn the_budget_is_never_above_the_default() {
        if std::env::var_os("AEDYN_MAX_MEMORY_GB").is_some() {
            return;
        }
        let budget = budget().unwrap();
        assert!(
            budget.bytes > 0.0 && budget.bytes <= DEFAULT_MAX_MEMORY_GB * 1e9,
            "{budget:?}"
        );
    }
}
