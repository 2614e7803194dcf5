//! What compiled code calls: the Gaussian averages of each activation and their gradients, the
//! functions of the language, the K-generic matrix products and the Jacobian's hand-over, as
//! `extern "C"` functions with the names under which the code imports them.

use ae_core::activation::UserActivation;
use ae_core::averages::{ActivationKind, Averages, Erf, Linear, Relu, Tanh};
use ae_core::kernel::{JacSlot, JacobianBuilder};
use ae_dsl::ir::{Avg, Func};
use cranelift_codegen::ir::{types, AbiParam, Signature};
use cranelift_codegen::isa::CallConv;

/// One imported function: its name and signature.
pub(crate) struct Import {
    pub name: String,
    pub signature: Signature,
}

fn signature(call_conv: CallConv, params: &[types::Type], returns: &[types::Type]) -> Signature {
    let mut sig = Signature::new(call_conv);
    sig.params.extend(params.iter().map(|t| AbiParam::new(*t)));
    sig.returns.extend(returns.iter().map(|t| AbiParam::new(*t)));
    sig
}

/// Where an activation's averages come from: closed forms (and tanh's quadrature) under their
/// own names, or a user activation's, which take it as their first argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AverageSource {
    Builtin(ActivationKind),
    User,
}

impl AverageSource {
    fn prefix(self) -> &'static str {
        match self {
            AverageSource::Builtin(a) => a.name(),
            AverageSource::User => "user",
        }
    }
}

/// The import of average `avg` (or its gradient, which writes one value per argument through
/// a pointer) for `source`.
pub(crate) fn average_import(source: AverageSource, avg: Avg, gradient: bool, call_conv: CallConv) -> Import {
    let f = types::F64;
    let mut params = Vec::new();
    if source == AverageSource::User {
        params.push(types::I64);
    }
    params.extend(std::iter::repeat_n(f, avg.arity()));
    let returns: &[types::Type] = if gradient {
        params.push(types::I64);
        &[]
    } else {
        &[f]
    };
    let name = format!(
        "{}_{}{}",
        source.prefix(),
        avg.method(),
        if gradient { "_grad" } else { "" }
    );
    Import {
        name,
        signature: signature(call_conv, &params, returns),
    }
}

/// The import of a function of the language that is not an instruction (`sqrt` and `abs` are).
pub(crate) fn func_import(func: Func, call_conv: CallConv) -> Import {
    Import {
        name: format!("fn_{}", func.name()),
        signature: signature(call_conv, &[types::F64], &[types::F64]),
    }
}

/// `jac_put(builder, table, values, tau)`: hands a block of Jacobian entries to the builder.
pub(crate) fn jac_put_import(call_conv: CallConv) -> Import {
    let p = types::I64;
    Import {
        name: "jac_put".into(),
        signature: signature(call_conv, &[p, p, p, p], &[]),
    }
}

/// `gram(k, m, rho, power, y1, y2, out)` and `mode_matmul(k, m, rho, power, y, c, out)`.
pub(crate) fn product_import(name: &str, call_conv: CallConv) -> Import {
    let p = types::I64;
    Import {
        name: name.into(),
        signature: signature(call_conv, &[p, p, p, p, p, p, p], &[]),
    }
}

macro_rules! builtin_averages {
    ($ty:ty, $i2:ident, $j2:ident, $i21:ident, $i22:ident, $i3:ident,
     $i2g:ident, $j2g:ident, $i21g:ident, $i22g:ident, $i3g:ident) => {
        extern "C" fn $i2(a: f64, b: f64, c: f64) -> f64 {
            <$ty as Averages>::i2(a, b, c)
        }
        extern "C" fn $j2(a: f64, b: f64, c: f64) -> f64 {
            <$ty as Averages>::j2(a, b, c)
        }
        extern "C" fn $i21(a: f64, b: f64, c: f64) -> f64 {
            <$ty as Averages>::i21(a, b, c)
        }
        extern "C" fn $i22(a: f64, b: f64, c: f64) -> f64 {
            <$ty as Averages>::i22(a, b, c)
        }
        extern "C" fn $i3(a: f64, b: f64, c: f64, d: f64, e: f64, f: f64) -> f64 {
            <$ty as Averages>::i3(a, b, c, d, e, f)
        }
        /// # Safety
        /// `out` points to 3 writable numbers (the code passes a buffer of its own).
        unsafe extern "C" fn $i2g(a: f64, b: f64, c: f64, out: *mut f64) {
            write(out, &<$ty as Averages>::i2_grad(a, b, c));
        }
        unsafe extern "C" fn $j2g(a: f64, b: f64, c: f64, out: *mut f64) {
            write(out, &<$ty as Averages>::j2_grad(a, b, c));
        }
        unsafe extern "C" fn $i21g(a: f64, b: f64, c: f64, out: *mut f64) {
            write(out, &<$ty as Averages>::i21_grad(a, b, c));
        }
        unsafe extern "C" fn $i22g(a: f64, b: f64, c: f64, out: *mut f64) {
            write(out, &<$ty as Averages>::i22_grad(a, b, c));
        }
        unsafe extern "C" fn $i3g(a: f64, b: f64, c: f64, d: f64, e: f64, f: f64, out: *mut f64) {
            write(out, &<$ty as Averages>::i3_grad(a, b, c, d, e, f));
        }
    };
}

/// Writes `values` where the compiled code asked for them.
///
/// # Safety
/// `out` points to `values.len()` writable numbers.
unsafe fn write(out: *mut f64, values: &[f64]) {
    // SAFETY: the caller's buffer holds one number per argument of the average.
    unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), out, values.len()) }
}

builtin_averages!(Erf, erf_i2, erf_j2, erf_i21, erf_i22, erf_i3, erf_i2g, erf_j2g, erf_i21g, erf_i22g, erf_i3g);
builtin_averages!(
    Linear,
    linear_i2,
    linear_j2,
    linear_i21,
    linear_i22,
    linear_i3,
    linear_i2g,
    linear_j2g,
    linear_i21g,
    linear_i22g,
    linear_i3g
);
builtin_averages!(
    Relu, relu_i2, relu_j2, relu_i21, relu_i22, relu_i3, relu_i2g, relu_j2g, relu_i21g, relu_i22g, relu_i3g
);
builtin_averages!(
    Tanh, tanh_i2, tanh_j2, tanh_i21, tanh_i22, tanh_i3, tanh_i2g, tanh_j2g, tanh_i21g, tanh_i22g, tanh_i3g
);

/// # Safety
/// `a` points to the kernel's user activation (kept for the process's life).
unsafe fn user<'a>(a: *const UserActivation) -> &'a UserActivation {
    // SAFETY: the kernel's context holds a pointer to a leaked, never-freed activation.
    unsafe { &*a }
}

unsafe extern "C" fn user_i2(a: *const UserActivation, c11: f64, c12: f64, c22: f64) -> f64 {
    unsafe { user(a) }.average(Avg::I2, &[c11, c12, c22])
}
unsafe extern "C" fn user_j2(a: *const UserActivation, c11: f64, c12: f64, c22: f64) -> f64 {
    unsafe { user(a) }.average(Avg::J2, &[c11, c12, c22])
}
unsafe extern "C" fn user_i21(a: *const UserActivation, c11: f64, c12: f64, c22: f64) -> f64 {
    unsafe { user(a) }.average(Avg::I21, &[c11, c12, c22])
}
unsafe extern "C" fn user_i22(a: *const UserActivation, c11: f64, c12: f64, c22: f64) -> f64 {
    unsafe { user(a) }.average(Avg::I22, &[c11, c12, c22])
}
unsafe extern "C" fn user_i3(
    a: *const UserActivation,
    c11: f64,
    c12: f64,
    c13: f64,
    c22: f64,
    c23: f64,
    c33: f64,
) -> f64 {
    unsafe { user(a) }.average(Avg::I3, &[c11, c12, c13, c22, c23, c33])
}
/// # Safety
/// As above; `out` holds 3 writable numbers (6 for `i3`).
unsafe extern "C" fn user_i2g(a: *const UserActivation, c11: f64, c12: f64, c22: f64, out: *mut f64) {
    unsafe { write(out, &user(a).gradient(Avg::I2, &[c11, c12, c22])) }
}
unsafe extern "C" fn user_j2g(a: *const UserActivation, c11: f64, c12: f64, c22: f64, out: *mut f64) {
    unsafe { write(out, &user(a).gradient(Avg::J2, &[c11, c12, c22])) }
}
unsafe extern "C" fn user_i21g(a: *const UserActivation, c11: f64, c12: f64, c22: f64, out: *mut f64) {
    unsafe { write(out, &user(a).gradient(Avg::I21, &[c11, c12, c22])) }
}
unsafe extern "C" fn user_i22g(a: *const UserActivation, c11: f64, c12: f64, c22: f64, out: *mut f64) {
    unsafe { write(out, &user(a).gradient(Avg::I22, &[c11, c12, c22])) }
}
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn user_i3g(
    a: *const UserActivation,
    c11: f64,
    c12: f64,
    c13: f64,
    c22: f64,
    c23: f64,
    c33: f64,
    out: *mut f64,
) {
    unsafe { write(out, &user(a).gradient(Avg::I3, &[c11, c12, c13, c22, c23, c33])) }
}

extern "C" fn fn_exp(x: f64) -> f64 {
    x.exp()
}
extern "C" fn fn_log(x: f64) -> f64 {
    x.ln()
}
extern "C" fn fn_asin(x: f64) -> f64 {
    x.asin()
}
extern "C" fn fn_acos(x: f64) -> f64 {
    x.acos()
}
extern "C" fn fn_atan(x: f64) -> f64 {
    x.atan()
}
extern "C" fn fn_sin(x: f64) -> f64 {
    x.sin()
}
extern "C" fn fn_cos(x: f64) -> f64 {
    x.cos()
}
extern "C" fn fn_tanh(x: f64) -> f64 {
    x.tanh()
}
extern "C" fn fn_erf(x: f64) -> f64 {
    ae_core::averages::erf(x)
}
extern "C" fn fn_sign(x: f64) -> f64 {
    ae_core::averages::sign(x)
}

/// The slot tables of one kernel's Jacobian blocks, and the builder they fill.
pub(crate) struct JacobianTarget<'a, 'b> {
    pub builder: &'a mut JacobianBuilder<'b>,
    pub tables: &'a [Vec<(JacSlot, JacSlot)>],
}

/// # Safety
/// `target` is the `JacobianTarget` the kernel passed to the code, `values` holds as many
/// numbers as table `table` has slots.
unsafe extern "C" fn jac_put(target: *mut JacobianTarget, table: u64, values: *const f64, tau: u64) {
    // SAFETY: the kernel's own target, alive for the call it made.
    let target = unsafe { &mut *target };
    let slots = &target.tables[table as usize];
    // SAFETY: the code writes one value per slot of the table before it calls.
    let values = unsafe { std::slice::from_raw_parts(values, slots.len()) };
    target.builder.put(slots, values, tau as usize);
}

/// # Safety
/// The pointers hold M x K (`y1`, `y2`), M (`rho`) and K x K (`out`) numbers.
unsafe extern "C" fn gram(k: u64, m: u64, rho: *const f64, power: u64, y1: *const f64, y2: *const f64, out: *mut f64) {
    let (k, m) = (k as usize, m as usize);
    // SAFETY: the code passes blocks of the state and a scratch region of these sizes.
    let (rho, y1, y2) = unsafe {
        (
            std::slice::from_raw_parts(rho, m),
            std::slice::from_raw_parts(y1, m * k),
            std::slice::from_raw_parts(y2, m * k),
        )
    };
    let g = ae_core::generic::gram(k, m, rho, power as usize, y1, y2);
    // SAFETY: `out` holds K x K numbers.
    unsafe { write(out, &g) }
}

/// # Safety
/// The pointers hold M (`rho`), M x K (`y`, `out`) and K x K (`c`) numbers.
unsafe extern "C" fn mode_matmul(
    k: u64,
    m: u64,
    rho: *const f64,
    power: u64,
    y: *const f64,
    c: *const f64,
    out: *mut f64,
) {
    let (k, m) = (k as usize, m as usize);
    // SAFETY: the code passes blocks of the state, of the derivative and a scratch region of
    // these sizes.
    let (rho, y, c, out) = unsafe {
        (
            std::slice::from_raw_parts(rho, m),
            std::slice::from_raw_parts(y, m * k),
            std::slice::from_raw_parts(c, k * k),
            std::slice::from_raw_parts_mut(out, m * k),
        )
    };
    ae_core::generic::mode_matmul(k, m, rho, power as usize, y, c, out);
}

/// Every function compiled code may import, by name.
pub(crate) fn table() -> Vec<(&'static str, *const u8)> {
    macro_rules! entries {
        ($($name:ident),* $(,)?) => { vec![$((stringify!($name), $name as *const u8)),*] };
    }
    let mut t: Vec<(&'static str, *const u8)> = entries![
        erf_i2,
        erf_j2,
        erf_i21,
        erf_i22,
        erf_i3,
        linear_i2,
        linear_j2,
        linear_i21,
        linear_i22,
        linear_i3,
        relu_i2,
        relu_j2,
        relu_i21,
        relu_i22,
        relu_i3,
        tanh_i2,
        tanh_j2,
        tanh_i21,
        tanh_i22,
        tanh_i3,
        user_i2,
        user_j2,
        user_i21,
        user_i22,
        user_i3,
        fn_exp,
        fn_log,
        fn_asin,
        fn_acos,
        fn_atan,
        fn_sin,
        fn_cos,
        fn_tanh,
        fn_erf,
        fn_sign,
        jac_put,
        gram,
        mode_matmul,
    ];
    // The gradients are imported as `<average>_grad`.
    let gradients: Vec<(&'static str, *const u8)> = vec![
        ("erf_i2_grad", erf_i2g as *const u8),
        ("erf_j2_grad", erf_j2g as *const u8),
        ("erf_i21_grad", erf_i21g as *const u8),
        ("erf_i22_grad", erf_i22g as *const u8),
        ("erf_i3_grad", erf_i3g as *const u8),
        ("linear_i2_grad", linear_i2g as *const u8),
        ("linear_j2_grad", linear_j2g as *const u8),
        ("linear_i21_grad", linear_i21g as *const u8),
        ("linear_i22_grad", linear_i22g as *const u8),
        ("linear_i3_grad", linear_i3g as *const u8),
        ("relu_i2_grad", relu_i2g as *const u8),
        ("relu_j2_grad", relu_j2g as *const u8),
        ("relu_i21_grad", relu_i21g as *const u8),
        ("relu_i22_grad", relu_i22g as *const u8),
        ("relu_i3_grad", relu_i3g as *const u8),
        ("tanh_i2_grad", tanh_i2g as *const u8),
        ("tanh_j2_grad", tanh_j2g as *const u8),
        ("tanh_i21_grad", tanh_i21g as *const u8),
        ("tanh_i22_grad", tanh_i22g as *const u8),
        ("tanh_i3_grad", tanh_i3g as *const u8),
        ("user_i2_grad", user_i2g as *const u8),
        ("user_j2_grad", user_j2g as *const u8),
        ("user_i21_grad", user_i21g as *const u8),
        ("user_i22_grad", user_i22g as *const u8),
        ("user_i3_grad", user_i3g as *const u8),
    ];
    t.extend(gradients);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every function of the language that is not an instruction has its symbol, and so does
    /// every average of every activation and its gradient.
    #[test]
    fn every_import_has_a_symbol() {
        let names: Vec<&str> = table().iter().map(|(n, _)| *n).collect();
        for (_, f) in Func::ALL {
            if !matches!(f, Func::Sqrt | Func::Abs) {
                let name = func_import(f, CallConv::SystemV).name;
                assert!(names.contains(&name.as_str()), "{name} missing");
            }
        }
        let sources = ActivationKind::ALL
            .iter()
            .map(|a| AverageSource::Builtin(*a))
            .chain([AverageSource::User]);
        for source in sources {
            for (_, avg) in Avg::ALL {
                for gradient in [false, true] {
                    let name = average_import(source, avg, gradient, CallConv::SystemV).name;
                    assert!(names.contains(&name.as_str()), "{name} missing");
                }
            }
        }
    }
}
