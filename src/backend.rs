//! Which code evaluates a model: the kernels generated into the binary, machine code compiled
//! at run time from the file, or the interpreter; and where equation files come from.
//!
//! Without a choice of the user's, a shipped file runs its generated unrolled kernel where one
//! exists for (K, activation). Everything else (a file of one's own, or a K without an unrolled
//! kernel) is compiled at run time: unrolled with its symbolic Jacobian up to K = 16 where a
//! stiff method may use it, K-generic loops beyond (or the generated K-generic kernel of a
//! shipped file). The interpreter is the fallback, should the compiler refuse a file.

use std::sync::Arc;

use ae_core::activation::Activation;
use ae_core::averages::ActivationKind;
use ae_core::kernel::{Backend, Kernel};
use ae_dsl::layout::Layout;
use ae_dsl::Model;
use ae_jit::{JitKernel, Shape};
use ae_runtime::interp::Interpreter;
use ae_runtime::ode::RODAS_MAX_STATE;

use crate::error::{input, RunError};
use crate::models;

/// An equation file's text, where it came from, and whether it is one of the shipped files.
#[derive(Debug, Clone)]
pub struct EquationFile {
    /// As errors name it: `equations/vanilla.ae`, or the user's path.
    pub path: String,
    pub text: String,
    pub shipped: bool,
}

/// The equations `spec` names: a shipped name (`vanilla`) or the path of a file. A path must
/// be a regular file (a FIFO without a writer would block forever).
/// The equation file, compiled: once per process for each (path, text), since a sweep or a
/// compare loads the same file for every point, on both sides, and again to validate.
pub fn compiled(file: &EquationFile) -> Result<std::sync::Arc<ae_dsl::Model>, RunError> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    type Cache = Mutex<HashMap<(String, String), Arc<ae_dsl::Model>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let key = (file.path.clone(), file.text.clone());
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(model) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(model.clone());
    }
    let model = Arc::new(ae_dsl::compile(&file.path, &file.text)?);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, model.clone());
    Ok(model)
}

pub fn equation_file(spec: &str) -> Result<EquationFile, RunError> {
    if let Some(text) = models::shipped_source(spec) {
        return Ok(EquationFile {
            path: format!("equations/{spec}.ae"),
            text: text.to_string(),
            shipped: true,
        });
    }
    if !(spec.ends_with(".ae") || spec.contains('/')) {
        let names: Vec<&str> = models::shipped_equations().collect();
        return input(format!(
            "unknown equations `{spec}`: expected one of {} or the path of an .ae file",
            names.join(", ")
        ));
    }
    let text = crate::files::read_text(spec, "equation file")?;
    Ok(EquationFile {
        path: spec.to_string(),
        text,
        shipped: false,
    })
}

/// The activation `name`: a built-in one, or one that `file` declares (`activation NAME(x) =
/// ...`), compiled now (once per process). Errors point at the declaration.
pub fn activation(file: &EquationFile, model: &Model, name: &str) -> Result<Activation, RunError> {
    if let Some(kind) = ActivationKind::parse(name) {
        return Ok(kind.into());
    }
    match model.activations.iter().find(|a| a.name == name) {
        Some(def) => ae_jit::user_activation(def, &file.text)
            .map(Activation::User)
            .map_err(|e| RunError::Input(format!("{}:{}:{}: {e}", file.path, def.line, def.col))),
        None => {
            let own: Vec<&str> = model.activations.iter().map(|a| a.name.as_str()).collect();
            let declared = match own.is_empty() {
                true => "declares none".to_string(),
                false => format!("declares {}", own.join(", ")),
            };
            input(format!(
                "unknown --activation `{name}`: expected erf, linear, relu or tanh, or one the equation file declares with `activation NAME(x) = EXPR` ({} {declared})",
                file.path
            ))
        }
    }
}

/// The activation `name` for the equations `spec` names (a built-in one without reading them).
pub fn activation_named(spec: &str, name: &str) -> Result<Activation, RunError> {
    if let Some(kind) = ActivationKind::parse(name) {
        return Ok(kind.into());
    }
    let file = equation_file(spec)?;
    let model = compiled(&file)?;
    activation(&file, &model, name)
}

/// The kernel for `model` (from `file`) with `k` units and `m` modes: the backend the user asked
/// for, or the one the module doc describes.
pub fn kernel(
    file: &EquationFile,
    model: &Arc<Model>,
    k: usize,
    m: usize,
    activation: Activation,
    requested: Option<Backend>,
) -> Result<Box<dyn Kernel>, RunError> {
    // Code is generated into the binary for the shipped files and built-in activations only.
    let builtin = activation.builtin().filter(|_| file.shipped);
    let generated = || builtin.and_then(|a| models::generated(&model.name, k, a));
    let interpreter = || Box::new(Interpreter::new(model.clone(), &file.text, k, activation)) as Box<dyn Kernel>;
    match requested {
        Some(Backend::Interpreter) => Ok(interpreter()),
        Some(Backend::Generated) => generated().ok_or_else(|| {
            RunError::Input(format!(
                "--backend generated: {} has no code generated into this binary for K = {k} and {activation} (shipped files have; use --backend jit)",
                file.path
            ))
        }),
        Some(Backend::Jit) => jit(file, model, k, activation, jit_shape(model, k, m))
            .map_err(|e| RunError::Input(format!("--backend jit: {}: {e}", file.path))),
        None => {
            if let Some(unrolled) = builtin.and_then(|a| models::unrolled(&model.name, k, a)) {
                return Ok(unrolled);
            }
            let shape = jit_shape(model, k, m);
            if shape == Shape::Generic {
                if let Some(generic) = generated() {
                    return Ok(generic);
                }
            }
            // The compiler refuses only what it cannot hold (a huge unrolled program): the
            // K-generic code, then the interpreter, take such files.
            Ok(jit(file, model, k, activation, shape)
                .or_else(|_| jit(file, model, k, activation, Shape::Generic))
                .unwrap_or_else(|_| interpreter()))
        }
    }
}

/// Unrolled code (with the symbolic Jacobian) where a stiff method may use it, up to
/// `MAX_UNROLLED_K`; K-generic loops where the state is too large for a dense Jacobian anyway
/// (then loops over matrix products are as fast and compile in constant time).
fn jit_shape(model: &Model, k: usize, m: usize) -> Shape {
    let n = Layout::new(model, k, m).len;
    match ae_jit::default_shape(k) {
        Shape::Unrolled if n <= RODAS_MAX_STATE || k <= 4 => Shape::Unrolled,
        _ => Shape::Generic,
    }
}

fn jit(
    file: &EquationFile,
    model: &Arc<Model>,
    k: usize,
    activation: Activation,
    shape: Shape,
) -> Result<Box<dyn Kernel>, ae_jit::JitError> {
    Ok(Box::new(JitKernel::new(
        model.clone(),
        &file.text,
        k,
        activation,
        shape,
    )?))
}
