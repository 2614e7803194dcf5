//! A user's activation compiled to machine code: g alone, (g, g') and (g, g', g'', g''') as
//! three functions, checked to be finite over the range the averages integrate, with the
//! points where g' jumps found, and kept for the process's life (kernels and simulators hold
//! it by reference).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use ae_core::activation::{ScalarFunction, UserActivation};
use ae_dsl::ir::{ActivationDef, Scalar};
use ae_dsl::layout::Layout;
use ae_dsl::user_activation::derivatives_program;
use cranelift_jit::JITModule;

use crate::kernel::Context;
use crate::symbols::AverageSource;
use crate::{define, new_module, JitError, RawFn, Shape};

/// g is checked to be finite (with its derivatives) for |x| up to this: the quadrature's
/// nodes reach 8.5 standard deviations, so the check covers variances up to about 57; beyond,
/// a run that meets a non-finite value stops with an error naming the state and the time.
pub const CHECKED_RANGE: f64 = 64.0;

/// The compiled functions of one activation.
struct Compiled {
    g: RawFn,
    g_dg: RawFn,
    all: RawFn,
    /// Owns the code's memory.
    _modules: Vec<crate::Sendable<JITModule>>,
}

impl Compiled {
    fn call<const N: usize>(&self, f: RawFn, x: f64) -> [f64; N] {
        let mut out = [0.0; N];
        // The functions read nothing of their context (no parameters, no modes).
        let ctx = Context::empty();
        // SAFETY: the function reads y[0] and writes N outputs, as its program says.
        unsafe { f(&ctx, &x, out.as_mut_ptr()) };
        out
    }
}

impl ScalarFunction for Compiled {
    fn g(&self, x: f64) -> f64 {
        self.call::<1>(self.g, x)[0]
    }
    fn g_dg(&self, x: f64) -> (f64, f64) {
        let [g, dg] = self.call::<2>(self.g_dg, x);
        (g, dg)
    }
    fn derivatives(&self, x: f64) -> [f64; 4] {
        self.call::<4>(self.all, x)
    }
    fn derivatives_many(&self, xs: &[f64], out: &mut [[f64; 4]]) {
        let ctx = Context::empty();
        for (o, x) in out.iter_mut().zip(xs) {
            // SAFETY: as in `call`; the code writes the four values straight into `o`.
            unsafe { (self.all)(&ctx, x, o.as_mut_ptr()) };
        }
    }
}

// SAFETY: the compiled code is immutable and reentrant; the modules only keep it alive.
unsafe impl Send for Compiled {}
// SAFETY: as above.
unsafe impl Sync for Compiled {}

/// Why an activation cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ActivationError {
    #[error("activation `{name}` is {what} at x = {x} (the Gaussian averages integrate it over |x| up to {CHECKED_RANGE}): {hint}")]
    NotFinite {
        name: String,
        what: String,
        x: f64,
        hint: &'static str,
    },
    #[error("{0}")]
    Compile(#[from] JitError),
}

/// The activation `def` of the file `source`, compiled once per process.
pub fn user_activation(def: &ActivationDef, source: &str) -> Result<&'static UserActivation, ActivationError> {
    let file_hash = crate::hash_source(source);
    static COMPILED: OnceLock<Mutex<HashMap<u64, &'static UserActivation>>> = OnceLock::new();
    let id = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (file_hash, &def.name).hash(&mut h);
        h.finish()
    };
    let cache = COMPILED.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(found) = cache.lock().ok().and_then(|c| c.get(&id).copied()) {
        return Ok(found);
    }
    let compiled = compile(def)?;
    check_finite(def, &compiled)?;
    let kinks = kinks(&def.body);
    let activation: &'static UserActivation =
        Box::leak(Box::new(UserActivation::new(&def.name, id, Box::new(compiled), kinks)));
    if let Ok(mut c) = cache.lock() {
        c.insert(id, activation);
    }
    Ok(activation)
}

fn compile(def: &ActivationDef) -> Result<Compiled, JitError> {
    let layout = Layout {
        k: 1,
        m: 0,
        n_scalar: 1,
        blocks: vec![],
        len: 1,
    };
    let mut modules = Vec::new();
    let mut functions = Vec::new();
    for order in [0, 1, 3] {
        let program = derivatives_program(def, order);
        let mut module = new_module(Shape::Unrolled)?;
        let (id, _) = define(&mut module, "g", AverageSource::User, false, |cg| {
            crate::unrolled::emit(cg, &program, &layout);
        })?;
        module
            .finalize_definitions()
            .map_err(|e| JitError::Codegen(e.to_string()))?;
        // SAFETY: defined with the signature of RawFn.
        functions.push(unsafe { std::mem::transmute::<*const u8, RawFn>(module.get_finalized_function(id)) });
        modules.push(crate::Sendable(module));
    }
    Ok(Compiled {
        g: functions[0],
        g_dg: functions[1],
        all: functions[2],
        _modules: modules,
    })
}

/// The points where g' (or g) may jump: the zeros of every `abs` and `sign` argument, found by their sign changes
/// on a grid of step 1/64 over the checked range and bisection.
fn kinks(body: &Scalar) -> Vec<f64> {
    let mut out = Vec::new();
    let step = 1.0 / 64.0;
    let n = (2.0 * CHECKED_RANGE / step) as usize;
    for h in body.kink_arguments() {
        let mut previous = (-CHECKED_RANGE, h.eval(-CHECKED_RANGE));
        for i in 1..=n {
            let x = -CHECKED_RANGE + i as f64 * step;
            let v = h.eval(x);
            if v == 0.0 {
                out.push(x);
            } else if previous.1 != 0.0 && v.signum() != previous.1.signum() && v.is_finite() && previous.1.is_finite()
            {
                let (mut lo, mut hi) = (previous.0, x);
                for _ in 0..200 {
                    let mid = 0.5 * (lo + hi);
                    if mid <= lo || mid >= hi {
                        break;
                    }
                    if h.eval(mid).signum() == previous.1.signum() {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                out.push(0.5 * (lo + hi));
            }
            previous = (x, v);
        }
    }
    out
}

/// g and its derivatives are finite on a grid over the checked range (away from kinks, where
/// the derivatives of `abs` are undefined and the quadrature never evaluates them).
fn check_finite(def: &ActivationDef, compiled: &Compiled) -> Result<(), ActivationError> {
    let step = 1.0 / 16.0;
    let n = (2.0 * CHECKED_RANGE / step) as usize;
    let kinks = kinks(&def.body);
    for i in 0..=n {
        let x = -CHECKED_RANGE + i as f64 * step;
        if kinks.iter().any(|k| (k - x).abs() < 1e-9) {
            continue;
        }
        let d = compiled.derivatives(x);
        let names = [
            "not finite",
            "without a finite derivative",
            "without a finite second derivative",
            "without a finite third derivative",
        ];
        if let Some(j) = d.iter().position(|v| !v.is_finite()) {
            return Err(ActivationError::NotFinite {
                name: def.name.clone(),
                what: names[j].to_string(),
                x,
                hint:
                    "write it so that it stays finite there (log(1 + exp(x)) overflows beyond 709, exp(x^2) beyond 26)",
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nodes of a rule evaluated in one call give what one call per node gives, bit for
    /// bit (the quadrature's results must not depend on which it uses).
    #[test]
    fn derivatives_at_many_points_are_those_at_each() {
        let source = include_str!("../../equations/vanilla.ae").to_string()
            + "activation gelu(x) = x * (1 + erf(x / sqrt(2))) / 2\n\
               activation elu(x) = (x + abs(x)) / 2 + exp((x - abs(x)) / 2) - 1\n";
        let model = ae_dsl::compile("many.ae", &source).expect("compiles");
        let xs: Vec<f64> = (0..97).map(|i| -40.0 + 0.8347 * i as f64).collect();
        for def in &model.activations {
            let compiled = compile(def).expect("compiles");
            let mut many = vec![[f64::NAN; 4]; xs.len()];
            compiled.derivatives_many(&xs, &mut many);
            for (x, values) in xs.iter().zip(&many) {
                let one = compiled.derivatives(*x);
                assert_eq!(values.map(f64::to_bits), one.map(f64::to_bits), "{} at {x}", def.name);
            }
        }
    }
}
