//! Snapshots of what the generator sees and emits. Review changes with `cargo insta review`.

use crate::common;

use ae_core::averages::ActivationKind;
use quote::quote;

fn generated_code(equations: &str, k: usize, activation: ActivationKind) -> String {
    let (model, _) = common::shipped(equations);
    let type_name = ae_dsl::emit::type_name(&model.name, k, activation);
    let spec = ae_dsl::emit::EmitSpec {
        model: &model,
        k,
        type_name: &type_name,
        activation,
        // The macro passes include_str!(absolute path); a placeholder keeps the snapshot portable.
        source: quote!("<equation source>"),
        jacobian: true,
    };
    let tokens = ae_dsl::emit::emit(&spec);
    prettyplease::unparse(&syn::parse2(tokens).expect("generated code parses as a file"))
}

#[test]
fn vanilla_k2_erf_generated_code() {
    insta::assert_snapshot!(generated_code("vanilla", 2, ActivationKind::Erf));
}

#[test]
fn vanilla_ir() {
    let (model, _) = common::shipped("vanilla");
    insta::assert_snapshot!(model.pretty());
}

#[test]
fn vanilla_generic_erf_generated_code() {
    let (model, _) = common::shipped("vanilla");
    let type_name = ae_dsl::emit_generic::generic_type_name(&model.name, ActivationKind::Erf);
    let spec = ae_dsl::emit_generic::GenericSpec {
        model: &model,
        type_name: &type_name,
        activation: ActivationKind::Erf,
        source: quote!("<equation source>"),
    };
    let tokens = ae_dsl::emit_generic::emit_generic(&spec);
    insta::assert_snapshot!(prettyplease::unparse(
        &syn::parse2(tokens).expect("generated code parses as a file")
    ));
}

/// The run-time compiler's Cranelift IR of the same right-hand side (erf's averages inlined as
/// expressions, one loop over the modes for the order parameters, one for the per-mode states).
#[test]
fn vanilla_k2_erf_jit_ir() {
    let (model, _) = common::shipped("vanilla");
    let ir = ae_jit::rhs_ir(&model, 2, ActivationKind::Erf.into(), ae_jit::Shape::Unrolled).expect("compiles");
    insta::assert_snapshot!(ir);
}
