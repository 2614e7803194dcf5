//! The `aedyn` command; everything lives in the library (`aedyn::cli`).

fn main() -> std::process::ExitCode {
    aedyn::cli::main()
}

/// Asks whether standard output is open before Rust's runtime starts. The runtime reopens a
/// closed descriptor 0-2 on /dev/null, after which a closed output could not be told from
/// `>/dev/null`, and a `--json` summary would vanish with exit code 0. (`>/dev/null` and
/// Python's `subprocess.DEVNULL` are open descriptors and stay as they are.)
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static ASK_BEFORE_THE_RUNTIME: extern "C" fn() = {
    extern "C" fn ask_whether_standard_output_is_open() {
        extern "C" {
            fn fcntl(fd: i32, cmd: i32, ...) -> i32;
        }
        const F_GETFD: i32 = 1;
        // SAFETY: F_GETFD only reads descriptor 1's flags; -1 means it is not open.
        if unsafe { fcntl(1, F_GETFD) } == -1 {
            aedyn::cli::note_closed_standard_output();
        }
    }
    ask_whether_standard_output_is_open
};
