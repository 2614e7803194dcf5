//! Hostile equation files through the run-time compiler: the fuzz test's mutated shipped files
//! (2000 of them, of which about 600 kernels compile: the front end refuses the rest) and
//! random activation declarations. Each is an error or compiled code, never
//! a panic or an abort, and compiled code computes what the interpreter computes (non-finite
//! values included: a run that meets one stops with an error naming the state and the time).

use std::sync::Arc;

use ae_core::activation::Activation;
use ae_core::averages::ActivationKind;
use ae_core::kernel::Kernel;
use ae_jit::{JitKernel, Shape};
use proptest::prelude::*;

const SHIPPED: [&str; 3] = [
    include_str!("../../equations/vanilla.ae"),
    include_str!("../../equations/full_spectrum.ae"),
    include_str!("../../equations/density.ae"),
];

/// The right-hand side of `kernel` at a fixed state, two modes, every parameter 0.5.
fn evaluate(kernel: &mut dyn Kernel, model: &ae_dsl::Model, k: usize) -> Vec<f64> {
    kernel.set_rho(vec![1.5, 0.5]);
    kernel.params_mut().iter_mut().for_each(|p| *p = 0.5);
    let n = ae_dsl::layout::Layout::new(model, k, 2).len;
    let y: Vec<f64> = (0..n).map(|i| 0.3 + 0.1 * ((i * 7) % 5) as f64).collect();
    let mut out = vec![0.0; n];
    kernel.rhs(&y, &mut out);
    out
}

/// Compiled and interpreted values agree: to 1e-9 of their scale where finite (sums in other
/// orders over arbitrary expressions), non-finite at the same entries.
fn agree(jit: &[f64], interp: &[f64]) -> bool {
    let scale = interp
        .iter()
        .filter(|v| v.is_finite())
        .fold(1.0f64, |m, v| m.max(v.abs()));
    jit.iter()
        .zip(interp)
        .all(|(a, b)| (a.is_finite() == b.is_finite()) && (!b.is_finite() || (a - b).abs() <= 1e-9 * scale))
}

fn check(src: &str) {
    let Ok(model) = ae_dsl::compile("fuzz.ae", src) else {
        return;
    };
    let model = Arc::new(model);
    for (shape, k) in [(Shape::Unrolled, 1), (Shape::Unrolled, 2), (Shape::Generic, 2)] {
        if ae_dsl::unroll::check_k(&model, k).is_err() {
            continue;
        }
        let Ok(mut jit) = JitKernel::new(model.clone(), src, k, ActivationKind::Erf, shape) else {
            continue;
        };
        let mut interp = ae_runtime::interp::Interpreter::new(model.clone(), src, k, ActivationKind::Erf);
        let (a, b) = (evaluate(&mut jit, &model, k), evaluate(&mut interp, &model, k));
        assert!(agree(&a, &b), "{shape:?} K = {k}: {a:?} against {b:?}\n{src}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_shipped_files_compile_or_are_refused(
        which in 0usize..3,
        cuts in prop::collection::vec((0usize..4000, 0usize..40, prop::sample::select(vec!["", "[", "]", "(", ")", "k", "tau", ";", ",", "sum(a, ", "_", "^2", "/ 0", "log(", "d/dt x = 1\n"])), 1..4),
    ) {
        let mut src = SHIPPED[which].to_string();
        for (at, len, insert) in cuts {
            let at = at % (src.len() + 1);
            let end = (at + len).min(src.len());
            if src.is_char_boundary(at) && src.is_char_boundary(end) {
                src.replace_range(at..end, insert);
            }
        }
        check(&src);
    }

    #[test]
    fn random_activations_compile_or_are_refused(tokens in prop::collection::vec(prop::sample::select(vec![
        "x", "x", "1", "0.5", "2", "+", "-", "*", "/", "^", "(", ")", "exp(", "log(", "sqrt(",
        "abs(", "tanh(", "erf(", "sin(", "atan(", "asin(", ",", "y",
    ]), 1..24)) {
        let src = format!("{}\nactivation f(x) = {}\n", SHIPPED[0], tokens.join(" "));
        let Ok(model) = ae_dsl::compile("fuzz.ae", &src) else { return Ok(()) };
        let def = &model.activations[0];
        if let Ok(user) = ae_jit::user_activation(def, &src) {
            // A usable activation is finite, with its derivatives, wherever the averages look.
            let g = Activation::User(user);
            for x in [-8.0, -1.0, 0.0, 0.7, 8.0] {
                let (v, d) = g.g_dg(x);
                prop_assert!(v.is_finite() && d.is_finite(), "f({x}) = {v}, f' = {d}: {}", tokens.join(" "));
            }
        }
    }
}
