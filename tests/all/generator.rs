//! Property tests of the generator over variants of the shipped equation files: indices renamed,
//! statements reordered, unused parameters added. A variant must mean the same equations (the
//! interpreter gives the same right-hand side, entry by entry) and must generate valid Rust;
//! the ignored test compiles a batch of variants with the real macro (run by `.ci/run`).

use crate::common;

use std::collections::HashMap;
use std::sync::Arc;

use ae_core::averages::ActivationKind;
use ae_core::kernel::Kernel;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use quote::quote;

/// Every shipped equation file, from the list the kernels are generated from.
fn shipped_names() -> Vec<&'static str> {
    aedyn::models::shipped_equations().collect()
}
const FRESH: [&str; 10] = ["i", "j", "m", "p", "s", "x", "y", "z", "mu", "nu"];

/// The statements of a file: each starts at a line that begins with a keyword or `d/dt`.
fn statements(src: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in src.lines() {
        let code = line.split('#').next().unwrap_or("").trim_end();
        if code.trim().is_empty() {
            continue;
        }
        let first = code.split_whitespace().next().unwrap_or("");
        if ae_dsl::parser::KEYWORDS.contains(&first) || code.starts_with("d/dt") {
            out.push(code.to_string());
        } else if let Some(last) = out.last_mut() {
            last.push('\n');
            last.push_str(code);
        }
    }
    out
}

/// Replaces whole identifiers by their image under `map`.
fn rename(text: &str, map: &HashMap<&str, &str>) -> String {
    let mut out = String::new();
    let mut ident = String::new();
    let flush = |ident: &mut String, out: &mut String| {
        out.push_str(map.get(ident.as_str()).copied().unwrap_or(ident));
        ident.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            ident.push(c);
        } else {
            flush(&mut ident, &mut out);
            out.push(c);
        }
    }
    flush(&mut ident, &mut out);
    out
}

/// A variant of `src`: index names from `names`, non-`let` statements in the order `order`
/// (lets keep their relative order, since a let sees only the lets above it), `extra` unused
/// parameters, and the equations renamed `name`.
fn variant(src: &str, name: &str, names: &[usize], order: &[usize], extra: usize) -> String {
    // Only index names are renamed: in reduced.ae `a` is a state, whose entries the comparison
    // finds by name.
    let model = ae_dsl::compile("original.ae", src).expect("shipped equations compile");
    let declared: Vec<&str> = (model.states.iter().map(|s| s.name.as_str()))
        .chain(model.params.iter().map(|p| p.name.as_str()))
        .chain(model.lets.iter().map(|l| l.name.as_str()))
        .collect();
    let mut map: HashMap<&str, &str> = HashMap::new();
    for (old, new) in ["k", "l", "a", "tau"].iter().zip(names) {
        if !declared.contains(old) {
            map.insert(old, FRESH[*new]);
        }
    }
    let stmts = statements(&rename(src, &map));
    let (head, rest): (Vec<String>, Vec<String>) = stmts
        .into_iter()
        .filter(|s| !s.starts_with("equations"))
        .partition(|s| s.starts_with("hidden") || s.starts_with("modes"));
    let (lets, mut others): (Vec<String>, Vec<String>) = rest.into_iter().partition(|s| s.starts_with("let"));
    for i in 0..extra {
        others.push(format!("param unused_{i} = 0.{i}5"));
    }
    let mut shuffled: Vec<String> = order
        .iter()
        .filter(|i| **i < others.len())
        .map(|i| others[*i].clone())
        .collect();
    shuffled.extend(
        others
            .iter()
            .enumerate()
            .filter(|(i, _)| !order.contains(i))
            .map(|(_, s)| s.clone()),
    );
    // Interleave the lets, in order, at positions spread through the shuffled statements.
    let mut body = Vec::new();
    let step = shuffled.len() / (lets.len() + 1) + 1;
    let mut lets = lets.into_iter();
    for (i, s) in shuffled.into_iter().enumerate() {
        if i % step == 0 {
            body.extend(lets.next());
        }
        body.push(s);
    }
    body.extend(lets);
    let mut text = format!("equations {name}\n");
    for s in head.iter().chain(&body) {
        text.push_str(s);
        text.push('\n');
    }
    text
}

/// Right-hand side of `model` at the order parameters of a fixed random draw, by entry name.
fn rhs_by_name(model: &Arc<ae_dsl::Model>, src: &str, k: usize) -> HashMap<String, f64> {
    let (rho, inputs) = common::random_state(model, k, 16, 2, 5);
    let mut it = ae_runtime::interp::Interpreter::new(model.clone(), src, k, ActivationKind::Erf);
    it.set_rho(rho.clone());
    for (i, p) in model.params.iter().enumerate() {
        it.params_mut()[i] = match p.name.as_str() {
            "lr" => 0.7,
            "kappa" => 0.13,
            "rho_bulk" => 0.02,
            "bulk_trace" => 0.97,
            _ => 0.5,
        };
    }
    let y = it.init(&inputs);
    let mut dy = vec![0.0; y.len()];
    it.rhs(&y, &mut dy);
    let names = ae_dsl::layout::Layout::new(model, k, rho.len()).names(model);
    names.into_iter().zip(dy).collect()
}

fn variant_strategy() -> impl Strategy<Value = (usize, Vec<usize>, Vec<usize>, usize)> {
    (
        0..shipped_names().len(),
        Just((0..FRESH.len()).collect::<Vec<usize>>()).prop_shuffle(),
        Just((0..40).collect::<Vec<usize>>()).prop_shuffle(),
        0usize..4,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn variants_mean_the_same_equations_and_emit_valid_rust((which, names, order, extra) in variant_strategy()) {
        let (original, src) = common::shipped(shipped_names()[which]);
        let text = variant(src, "variant", &names[..4], &order, extra);
        let model = Arc::new(ae_dsl::compile("variant.ae", &text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?);
        prop_assert_eq!(model.ratio_rewrites, original.ratio_rewrites);
        for k in [1, 3] {
            let (a, b) = (rhs_by_name(&original, src, k), rhs_by_name(&model, &text, k));
            prop_assert_eq!(a.len(), b.len());
            for (name, value) in &a {
                // Same expressions in the same order: identical to rounding.
                let other = b[name];
                prop_assert!((value - other).abs() <= 1e-13 * value.abs().max(1e-12), "{}: {} vs {}", name, value, other);
            }
        }
        let spec = ae_dsl::emit::EmitSpec {
            model: &model,
            k: 2,
            type_name: "VariantK2Erf",
            activation: ae_core::averages::ActivationKind::Erf,
            source: quote!("source"),
            jacobian: true,
        };
        let tokens = ae_dsl::emit::emit(&spec);
        prop_assert!(syn::parse2::<syn::File>(tokens).is_ok(), "emitted code does not parse");
    }
}

#[test]
#[ignore = "builds a crate with the macro (about a minute); run by .ci/run"]
fn generated_variants_compile() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = std::path::Path::new(root).join("target").join("generated-variants");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let mut files = Vec::new();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for i in 0..6 {
        let (which, names, order, extra) = variant_strategy().new_tree(&mut runner).unwrap().current();
        let (_, src) = common::shipped(shipped_names()[which]);
        let text = variant(src, &format!("variant{i}"), &names[..4], &order, extra);
        let file = format!("variant{i}.ae");
        std::fs::write(dir.join(&file), text).unwrap();
        files.push(format!("{file:?}"));
    }
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"generated-variants\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[dependencies]\nae-macros = {{ path = {:?} }}\nae-core = {{ path = {:?} }}\n\n[workspace]\n",
            format!("{root}/ae-macros"),
            format!("{root}/ae-core")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("src/lib.rs"),
        format!(
            "ae_macros::generate! {{ files = [{}], k = [1, 2, 3], activations = [erf, relu, tanh] }}\n",
            files.join(", ")
        ),
    )
    .unwrap();
    std::fs::copy(format!("{root}/Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let status = std::process::Command::new(env!("CARGO"))
        .args(["check", "--quiet", "--offline"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .status()
        .unwrap();
    assert!(
        status.success(),
        "generated code for the variants in {} does not compile",
        dir.display()
    );
}
