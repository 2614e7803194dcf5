//! The generated right-hand sides: one type per (equation file, K, activation).

/// The default set: every shipped equation file, K = 1..=4, the four activations. The
/// equations that long runs integrate with the stiff method (SPEC section 7: vanilla,
/// truncated, reduced) also get their symbolic Jacobian; the spectrum-wide ones, whose states
/// grow with D, are for the explicit methods.
pub mod default {
    ae_macros::generate! {
        files = [
            "equations/vanilla.ae",
            "equations/full_spectrum.ae",
            "equations/density.ae",
            "equations/truncated.ae",
            "equations/reduced.ae",
        ],
        k = [1, 2, 3, 4],
        activations = [erf, linear, relu, tanh],
        jacobian = [vanilla, truncated, reduced],
        generic = true,
    }
}

/// The full-spectrum equations (real data) for wider networks, K = 5..=8, erf and linear:
/// their state is O(K D), so the interpreter is too slow there (31 s against well under a
/// second for K = 8, D = 1024, t = 0..100).
pub mod wide {
    ae_macros::generate! {
        files = ["equations/full_spectrum.ae"],
        k = [5, 6, 7, 8],
        activations = [erf, linear],
    }
}

/// Everything else meant for use at K = 5..=8, behind the `large-k` feature (compile time: see
/// README). What is not generated runs on the interpreter.
#[cfg(feature = "large-k")]
pub mod large {
    ae_macros::generate! {
        files = ["equations/vanilla.ae"],
        k = [5, 6, 7, 8],
        activations = [erf, linear, relu],
    }
    /// The rest of the full-spectrum set.
    pub mod relu {
        ae_macros::generate! {
            files = ["equations/full_spectrum.ae"],
            k = [5, 6, 7, 8],
            activations = [relu],
        }
    }
}

/// The generated kernel for (equations, K, activation), if any: the unrolled one where it was
/// generated for this K, else the K-generic one.
pub fn generated(equations: &str, k: usize, activation: &str) -> Option<Box<dyn ae_runtime::kernel::Kernel>> {
    unrolled(equations, k, activation).or_else(|| generic(equations, k, activation))
}

/// The unrolled kernel for (equations, K, activation), if it was generated for this K.
pub fn unrolled(equations: &str, k: usize, activation: &str) -> Option<Box<dyn ae_runtime::kernel::Kernel>> {
    if let Some(kernel) = default::kernel(equations, k, activation) {
        return Some(kernel);
    }
    if let Some(kernel) = wide::kernel(equations, k, activation) {
        return Some(kernel);
    }
    #[cfg(feature = "large-k")]
    if let Some(kernel) = large::kernel(equations, k, activation) {
        return Some(kernel);
    }
    #[cfg(feature = "large-k")]
    if let Some(kernel) = large::relu::kernel(equations, k, activation) {
        return Some(kernel);
    }
    None
}

/// The K-generic kernel for (equations, activation) with `k` hidden units (every shipped file
/// and activation has one).
pub fn generic(equations: &str, k: usize, activation: &str) -> Option<Box<dyn ae_runtime::kernel::Kernel>> {
    default::generic_kernel(equations, k, activation)
}

/// The source of a shipped equation file, by equation name.
pub fn shipped_source(equations: &str) -> Option<&'static str> {
    default::SOURCES
        .iter()
        .find(|(name, _)| *name == equations)
        .map(|(_, src)| *src)
}
