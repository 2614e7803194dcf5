//! The generated right-hand sides: one type per (equation file, K, activation), in a crate of
//! their own so that the thousands of generated statements compile once for the library, the
//! tests and the benchmarks (and not again for the application crate's unit tests).

use ae_core::averages::ActivationKind;

/// The default set: every equation file in `equations/` (found by the macro; `build.rs` makes
/// cargo look again when a file is added), K = 1..=4, the four activations. The equations that
/// long runs integrate with the stiff method (docs/theory.md section 7: vanilla, truncated,
/// reduced) also get their symbolic Jacobian; the spectrum-wide ones, whose states grow with D,
/// are for the explicit methods.
pub mod default {
    ae_macros::generate! {
        dir = "../equations",
        k = [1, 2, 3, 4],
        activations = [erf, linear, relu, tanh],
        jacobian = [vanilla, truncated, reduced],
        generic = true,
    }
}

/// Unrolled vanilla kernels for K = 5..=8, behind the `large-k` feature (compile time: see
/// README). Without it those K run on the K-generic kernels, like every K of the spectrum-wide
/// files above 4.
#[cfg(feature = "large-k")]
pub mod large {
    ae_macros::generate! {
        files = ["../equations/vanilla.ae"],
        k = [5, 6, 7, 8],
        activations = [erf, linear, relu],
    }
}

/// The generated kernel for (equations, K, activation), if any: the unrolled one where it was
/// generated for this K, else the K-generic one.
pub fn generated(equations: &str, k: usize, activation: ActivationKind) -> Option<Box<dyn ae_core::kernel::Kernel>> {
    unrolled(equations, k, activation).or_else(|| generic(equations, k, activation))
}

/// The unrolled kernel for (equations, K, activation), if it was generated for this K.
pub fn unrolled(equations: &str, k: usize, activation: ActivationKind) -> Option<Box<dyn ae_core::kernel::Kernel>> {
    if let Some(kernel) = default::kernel(equations, k, activation) {
        return Some(kernel);
    }
    #[cfg(feature = "large-k")]
    if let Some(kernel) = large::kernel(equations, k, activation) {
        return Some(kernel);
    }
    None
}

/// The K-generic kernel for (equations, activation) with `k` hidden units (every shipped file
/// and activation has one).
pub fn generic(equations: &str, k: usize, activation: ActivationKind) -> Option<Box<dyn ae_core::kernel::Kernel>> {
    default::generic_kernel(equations, k, activation)
}

/// The source of a shipped equation file, by equation name.
pub fn shipped_source(equations: &str) -> Option<&'static str> {
    default::SOURCES
        .iter()
        .find(|(name, _)| *name == equations)
        .map(|(_, src)| *src)
}

/// The names of the shipped equation files (`vanilla`, ...), in the order they are generated:
/// the one list that the CLI's messages and the tests iterate over.
pub fn shipped_equations() -> impl Iterator<Item = &'static str> {
    default::SOURCES.iter().map(|(name, _)| *name)
}
