//! The `aedyn` command; everything lives in the library (`aedyn::cli`).

fn main() -> std::process::ExitCode {
    aedyn::cli::main()
}
