//! Procedural macro that reads aedyn equation files and emits one specialised, unrolled type per
//! (file, K, activation), plus a dispatcher. All logic lives in `ae-dsl`; this crate only
//! parses the macro input, reads the files and turns front-end errors into compile errors.
//!
//! ```ignore
//! ae_macros::generate! {
//!     dir = "equations",                      // every .ae file in it, by name
//!     files = ["more/variant.ae"],             // and any others
//!     k = [1, 2, 3, 4],
//!     activations = [erf, linear, relu, tanh],
//! }
//! ```
//! An optional `jacobian = [vanilla, ...]` names the equations whose types also get a symbolic
//! Jacobian (for the activations with closed-form averages).
//! Paths are relative to the invoking crate's `CARGO_MANIFEST_DIR`. Editing a file triggers
//! regeneration: each type's `SOURCE` is an `include_str!` of it, which cargo tracks.

use ae_dsl::ActivationKind;
use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{bracketed, Ident, LitInt, LitStr, Token};

struct Input {
    /// A folder whose `.ae` files are all generated, in the order of their names.
    dir: Option<LitStr>,
    files: Vec<LitStr>,
    ks: Vec<LitInt>,
    activations: Vec<(Ident, ActivationKind)>,
    /// Equation names (`vanilla`, ...) whose types also get the symbolic Jacobian.
    jacobian: Vec<Ident>,
    /// Also emit one K-generic type per (file, activation), for every K not listed.
    generic: bool,
}

impl Parse for Input {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut files = None;
        let mut dir = None;
        let mut ks = None;
        let mut activations = None;
        let mut jacobian = Vec::new();
        let mut generic = false;
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            if key == "dir" {
                dir = Some(input.parse::<LitStr>()?);
                if !input.is_empty() {
                    input.parse::<Token![,]>()?;
                }
                continue;
            }
            if key == "generic" {
                generic = input.parse::<syn::LitBool>()?.value;
                if !input.is_empty() {
                    input.parse::<Token![,]>()?;
                }
                continue;
            }
            let content;
            bracketed!(content in input);
            match key.to_string().as_str() {
                "files" => {
                    files = Some(
                        Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?
                            .into_iter()
                            .collect(),
                    )
                }
                "k" => {
                    ks = Some(
                        Punctuated::<LitInt, Token![,]>::parse_terminated(&content)?
                            .into_iter()
                            .collect(),
                    )
                }
                "activations" => {
                    let mut typed = Vec::new();
                    for ident in Punctuated::<Ident, Token![,]>::parse_terminated(&content)? {
                        let Some(kind) = ActivationKind::parse(&ident.to_string()) else {
                            let known: Vec<&str> = ActivationKind::ALL.iter().map(|a| a.name()).collect();
                            return Err(syn::Error::new(
                                ident.span(),
                                format!("unknown activation `{ident}`: expected one of {}", known.join(", ")),
                            ));
                        };
                        typed.push((ident, kind));
                    }
                    activations = Some(typed)
                }
                "jacobian" => {
                    jacobian = Punctuated::<Ident, Token![,]>::parse_terminated(&content)?
                        .into_iter()
                        .collect()
                }
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                        "unknown key `{other}`: expected `dir`, `files`, `k`, `activations`, `jacobian` or `generic`"
                    ),
                    ))
                }
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        let missing = |what: &str| syn::Error::new(proc_macro2::Span::call_site(), format!("missing `{what} = [...]`"));
        if files.is_none() && dir.is_none() {
            return Err(missing("files"));
        }
        Ok(Input {
            dir,
            files: files.unwrap_or_default(),
            ks: ks.ok_or_else(|| missing("k"))?,
            activations: activations.ok_or_else(|| missing("activations"))?,
            jacobian,
            generic,
        })
    }
}

/// The files to generate: those of `dir` (by name), then those listed.
fn listed_files(root: &str, input: &Input) -> syn::Result<Vec<LitStr>> {
    let mut files = Vec::new();
    if let Some(dir) = &input.dir {
        let path = std::path::Path::new(root).join(dir.value());
        let entries = std::fs::read_dir(&path)
            .map_err(|e| syn::Error::new(dir.span(), format!("cannot read {}: {e}", path.display())))?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".ae"))
            .collect();
        names.sort();
        files.extend(
            names
                .iter()
                .map(|n| LitStr::new(&format!("{}/{n}", dir.value()), dir.span())),
        );
    }
    files.extend(input.files.iter().cloned());
    Ok(files)
}

#[proc_macro]
pub fn generate(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as Input);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

fn expand(input: &Input) -> syn::Result<TokenStream2> {
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_string());
    let mut items = TokenStream2::new();
    let mut arms = Vec::new();
    let mut sources = Vec::new();
    let mut listed = Vec::new();
    let mut ks = Vec::new();
    let mut names = Vec::new();
    let mut generic_arms = Vec::new();
    let mut generic_listed = Vec::new();
    for k in &input.ks {
        let value: usize = k.base10_parse()?;
        if value == 0 || value > 16 {
            return Err(syn::Error::new(k.span(), "K must be between 1 and 16"));
        }
        ks.push(value);
    }
    for file in listed_files(&root, input)? {
        let file = &file;
        let rel = file.value();
        let path = std::path::Path::new(&root).join(&rel);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            syn::Error::new(
                file.span(),
                format!("cannot read equation file {}: {e}", path.display()),
            )
        })?;
        let abs = path.to_string_lossy().to_string();
        // The located message (file:line:column) is the whole point; the span marks the macro input.
        let model = ae_dsl::compile(&rel, &text).map_err(|e| syn::Error::new(file.span(), format!("{e}")))?;
        let source = quote!(include_str!(#abs));
        let eq = model.name.clone();
        names.push(eq.clone());
        sources.push(quote!((#eq, #source)));
        if input.generic {
            for &(_, act) in &input.activations {
                let type_name = ae_dsl::emit_generic::generic_type_name(&model.name, act);
                items.extend(ae_dsl::emit_generic::emit_generic(&ae_dsl::emit_generic::GenericSpec {
                    model: &model,
                    type_name: &type_name,
                    activation: act,
                    source: source.clone(),
                }));
                let ty = format_ident!("{}", type_name);
                let value = ae_dsl::emit::activation_value(act);
                generic_arms
                    .push(quote!((#eq, #value) => ::std::option::Option::Some(::std::boxed::Box::new(#ty::new(k))),));
                generic_listed.push(quote!((#eq, #value)));
            }
        }
        for &k in &ks {
            ae_dsl::unroll::check_k(&model, k).map_err(|e| syn::Error::new(file.span(), format!("{e}")))?;
            for &(_, act) in &input.activations {
                let type_name = ae_dsl::emit::type_name(&model.name, k, act);
                let spec = ae_dsl::emit::EmitSpec {
                    model: &model,
                    k,
                    type_name: &type_name,
                    activation: act,
                    source: source.clone(),
                    // Emitted only where the activation has exact gradients (closed forms).
                    jacobian: input.jacobian.iter().any(|j| *j == model.name),
                };
                items.extend(ae_dsl::emit::emit(&spec));
                let ty = format_ident!("{}", type_name);
                let value = ae_dsl::emit::activation_value(act);
                arms.push(
                    quote!((#eq, #k, #value) => ::std::option::Option::Some(::std::boxed::Box::new(#ty::new())),),
                );
                listed.push(quote!((#eq, #k, #value)));
            }
        }
    }
    if let Some(unknown) = input.jacobian.iter().find(|j| !names.contains(&j.to_string())) {
        return Err(syn::Error::new(
            unknown.span(),
            format!(
                "`jacobian` names `{unknown}`, which is not one of the files' equations: {}",
                names.join(", ")
            ),
        ));
    }
    let with_jacobian: Vec<String> = input.jacobian.iter().map(|j| j.to_string()).collect();
    Ok(quote! {
        #items

        /// The generated kernel for (equations, K, activation), if it was generated.
        pub fn kernel(equations: &str, k: usize, activation: ::ae_core::averages::ActivationKind) -> ::std::option::Option<::std::boxed::Box<dyn ::ae_core::kernel::Kernel>> {
            match (equations, k, activation) {
                #(#arms)*
                _ => ::std::option::Option::None,
            }
        }

        /// Every generated (equations, K, activation).
        pub const GENERATED: &[(&str, usize, ::ae_core::averages::ActivationKind)] = &[#(#listed),*];

        /// The K-generic kernel for (equations, activation) at `k` hidden units, if one was
        /// generated (`generic = true`).
        pub fn generic_kernel(equations: &str, k: usize, activation: ::ae_core::averages::ActivationKind) -> ::std::option::Option<::std::boxed::Box<dyn ::ae_core::kernel::Kernel>> {
            match (equations, activation) {
                #(#generic_arms)*
                _ => ::std::option::Option::None,
            }
        }

        /// Every (equations, activation) with a K-generic kernel.
        pub const GENERIC: &[(&str, ::ae_core::averages::ActivationKind)] = &[#(#generic_listed),*];

        /// The source text of each equation file, by equation name.
        pub const SOURCES: &[(&str, &str)] = &[#(#sources),*];

        /// The equations whose kernels carry the symbolic Jacobian (for the activations with
        /// closed forms).
        pub const WITH_JACOBIAN: &[&str] = &[#(#with_jacobian),*];
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_error(file_text: &str, name: &str) -> String {
        let dir = std::env::temp_dir().join(format!("ae-macros-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, file_text).unwrap();
        let path = path.to_string_lossy().to_string();
        let input: Input = syn::parse2(quote!(files = [#path], k = [2], activations = [erf])).unwrap();
        let expanded = expand(&input);
        // Each test process used to leave its folder behind in the temporary directory.
        std::fs::remove_dir_all(&dir).unwrap();
        let err = expanded.expect_err("a malformed file must not expand");
        let tokens = err.to_compile_error().to_string();
        assert!(tokens.contains("compile_error"), "{tokens}");
        err.to_string()
    }

    #[test]
    fn malformed_equation_file_is_a_located_compile_error() {
        let msg = expand_error("hidden k\nstate x[k] init 0\nd/dt x[k] = y[k]\n", "bad.ae");
        assert!(msg.ends_with("bad.ae:3:13: unknown name `y`"), "{msg}");
    }

    #[test]
    fn missing_equation_file_names_the_path() {
        let input: Input = syn::parse2(quote!(files = ["no/such/file.ae"], k = [1], activations = [erf])).unwrap();
        let msg = expand(&input).unwrap_err().to_string();
        assert!(
            msg.contains("cannot read equation file") && msg.contains("no/such/file.ae"),
            "{msg}"
        );
    }

    #[test]
    fn an_unknown_activation_is_rejected_at_its_name() {
        let err = syn::parse2::<Input>(quote!(files = [], k = [1], activations = [erf, sigmoid]))
            .err()
            .expect("sigmoid is not an activation");
        assert_eq!(
            err.to_string(),
            "unknown activation `sigmoid`: expected one of erf, linear, relu, tanh"
        );
    }

    #[test]
    fn bad_k_is_rejected() {
        let input: Input = syn::parse2(quote!(files = [], k = [0], activations = [erf])).unwrap();
        assert!(expand(&input)
            .unwrap_err()
            .to_string()
            .contains("K must be between 1 and 16"));
    }
}
