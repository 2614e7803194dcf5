//! Property tests of the front end: no input makes it panic, and every rejection has a location
//! inside the file.

use proptest::prelude::*;

const SHIPPED: [&str; 3] = [
    include_str!("../../equations/vanilla.ae"),
    include_str!("../../equations/full_spectrum.ae"),
    include_str!("../../equations/density.ae"),
];

fn check(src: &str) {
    match ae_dsl::compile("fuzz.ae", src) {
        Ok(model) => {
            // Accepted files must unroll for K = 1..=3 without panicking.
            for k in 1..=3 {
                if ae_dsl::unroll::check_k(&model, k).is_ok() {
                    let _ = ae_dsl::unroll::unroll_rhs(&model, k);
                    let _ = ae_dsl::unroll::unroll_observables(&model, k);
                }
            }
        }
        Err(e) => {
            let lines = src.lines().count().max(1) + 1;
            assert!(
                e.span.line >= 1 && e.span.line <= lines,
                "line {} out of range: {e}",
                e.span.line
            );
            assert!(e.span.col >= 1, "column 0: {e}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(src in "\\PC{0,200}") {
        check(&src);
    }

    #[test]
    fn token_soup_never_panics(tokens in prop::collection::vec(prop::sample::select(vec![
        "equations", "hidden", "modes", "param", "state", "let", "def", "observe", "d", "/", "dt",
        "k", "l", "a", "tau", "_", "omega", "Q", "T0", "rho", "sum", "sym", "I2", "I3", "sqrt",
        "init", "symmetric", "[", "]", "(", ")", ",", ";", "=", "+", "-", "*", "^", "!=", "<=",
        "1", "2.5", "1e3", "\n", "#", "x",
    ]), 0..80)) {
        check(&tokens.join(" "));
    }

    #[test]
    fn mutated_shipped_files_never_panic(
        which in 0usize..3,
        cuts in prop::collection::vec((0usize..4000, 0usize..40, prop::sample::select(vec!["", "[", "]", "(", ")", "k", "tau", ";", ",", "sum(a, ", "_", "^2", "d/dt x = 1\n"])), 1..4),
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
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let src = format!(
        "hidden k\nstate x init 0\nd/dt x = {}1{}\n",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let e = ae_dsl::compile("deep.ae", &src).unwrap_err();
    assert!(e.to_string().contains("nested more than"), "{e}");
    let src = format!("hidden k\nstate x init 0\nd/dt x = {}1\n", "-".repeat(100_000));
    assert!(ae_dsl::compile("deep.ae", &src).is_err());
}

#[test]
fn recursive_def_is_an_error() {
    let src = "hidden k\nstate x init 0\ndef f(k) = f(k)\nd/dt x = sum(k, f(k))\n";
    let e = ae_dsl::compile("rec.ae", src).unwrap_err();
    assert!(e.to_string().contains("recursive"), "{e}");
}
