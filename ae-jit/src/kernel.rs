//! A compiled model as a [`Kernel`]: its parameters and modes, and the calls into the compiled
//! code with the context and buffers each call needs.

use std::sync::Arc;

use ae_core::activation::Activation;
use ae_core::kernel::{Backend, JacSlot, JacobianBuilder, Kernel};
use ae_dsl::layout::Layout;
use ae_dsl::unroll::JacIx;
use ae_dsl::Model;

use crate::symbols::JacobianTarget;
use crate::{compile, symbolic_jacobian_pays_off, Compiled, JacobianPolicy, JitError, Shape};

/// What every call of compiled code reads (field offsets in `codegen::CTX_*`).
#[repr(C)]
pub(crate) struct Context {
    pub params: *const f64,
    pub rho: *const f64,
    pub m: u64,
    pub activation: *const u8,
    pub jac_invariant: *mut f64,
    pub jac_mode: *mut f64,
    pub scratch: *mut f64,
}

impl Context {
    /// A context with no parameters, modes, buffers or activation.
    pub fn empty() -> Context {
        Context {
            params: std::ptr::null(),
            rho: std::ptr::null(),
            m: 0,
            activation: std::ptr::null(),
            jac_invariant: std::ptr::null_mut(),
            jac_mode: std::ptr::null_mut(),
            scratch: std::ptr::null_mut(),
        }
    }
}

/// Equations compiled to machine code for one K and activation.
pub struct JitKernel {
    compiled: Arc<Compiled>,
    model: Arc<Model>,
    source: Arc<str>,
    k: usize,
    activation: Activation,
    params: Vec<f64>,
    rho: Vec<f64>,
    /// Whether this kernel's making compiled the code (rather than finding it in the cache).
    fresh: bool,
    jacobian_policy: JacobianPolicy,
    /// The state's length for the modes set, and the number of observables (the calls'
    /// bounds, checked at every call).
    state_len: usize,
    observables: usize,
}

impl JitKernel {
    /// Compiles (or finds in this process's cache) `model`, whose text is `source`, for `k`
    /// units and `activation`, in `shape`.
    pub fn new(
        model: Arc<Model>,
        source: &str,
        k: usize,
        activation: impl Into<Activation>,
        shape: Shape,
    ) -> Result<JitKernel, JitError> {
        let activation = activation.into();
        let (compiled, fresh) = compile(&model, source, k, activation, shape)?;
        let params = model.params.iter().map(|p| p.default.unwrap_or(f64::NAN)).collect();
        Ok(JitKernel {
            compiled,
            source: Arc::from(source),
            k,
            activation,
            params,
            rho: Vec::new(),
            fresh,
            jacobian_policy: JacobianPolicy::WhenCheaper,
            state_len: Layout::new(&model, k, 0).len,
            observables: ae_dsl::unroll::observable_names(&model, k).len(),
            model,
        })
    }

    /// The same kernel, offering its symbolic Jacobian as `policy` says.
    pub fn with_jacobian_policy(self, policy: JacobianPolicy) -> JitKernel {
        JitKernel {
            jacobian_policy: policy,
            ..self
        }
    }

    pub fn shape(&self) -> Shape {
        self.compiled.shape
    }

    /// Seconds this kernel spent compiling: the right-hand side and observables if it compiled
    /// them (0 when they came from the cache), and the Jacobian once it was compiled.
    pub fn compile_seconds(&self) -> f64 {
        let own = if self.fresh { self.compiled.compile_seconds } else { 0.0 };
        own + self.compiled.jacobian_seconds.lock().map_or(0.0, |s| *s)
    }

    fn context(&self, scratch: &mut [f64]) -> Context {
        Context {
            params: self.params.as_ptr(),
            rho: self.rho.as_ptr(),
            m: self.rho.len() as u64,
            activation: match self.activation {
                Activation::User(u) => (u as *const ae_core::activation::UserActivation).cast(),
                Activation::Builtin(_) => std::ptr::null(),
            },
            jac_invariant: std::ptr::null_mut(),
            jac_mode: std::ptr::null_mut(),
            scratch: scratch.as_mut_ptr(),
        }
    }

    /// Calls `f` on `y` into `out`, with a zeroed scratch buffer of `scratch` numbers.
    fn call(&self, f: crate::RawFn, y: &[f64], out: &mut [f64], scratch: usize) {
        let mut buffer = vec![0.0; scratch];
        let ctx = self.context(&mut buffer);
        // SAFETY: the code reads the state's entries and writes the output's entries for this
        // kernel's K and number of modes, whose lengths the callers' assertions hold.
        unsafe { f(&ctx, y.as_ptr(), out.as_mut_ptr()) }
    }
}

/// Where a block entry of the front end's Jacobian goes in the runtime's assembly.
fn slot(ix: JacIx, layout: &Layout) -> JacSlot {
    match ix {
        JacIx::Y(i) => JacSlot::Y(i),
        JacIx::Mode { state, entry } => JacSlot::Mode {
            before: layout.mode_entries_before(state),
            stride: layout.blocks[state].entries,
            entry,
        },
        JacIx::Sum(m) => JacSlot::Sum(m),
    }
}

impl Kernel for JitKernel {
    fn equations(&self) -> &str {
        &self.model.name
    }
    fn activation(&self) -> Activation {
        self.activation
    }
    fn k(&self) -> usize {
        self.k
    }
    fn source(&self) -> &str {
        &self.source
    }
    fn params(&self) -> &[f64] {
        &self.params
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.params
    }
    fn rho(&self) -> &[f64] {
        &self.rho
    }
    fn set_rho(&mut self, rho: Vec<f64>) {
        self.state_len = Layout::new(&self.model, self.k, rho.len()).len;
        self.rho = rho;
    }

    fn rhs(&self, y: &[f64], dy: &mut [f64]) {
        let n = self.state_len;
        assert!(
            y.len() == n && dy.len() >= n,
            "a state of {} entries where {n} are laid out",
            y.len()
        );
        self.call(self.compiled.rhs, y, dy, self.compiled.scratch.0);
    }

    fn observe(&self, y: &[f64], out: &mut [f64]) {
        let n = self.state_len;
        assert!(
            y.len() == n && out.len() >= self.observables,
            "a state of {} entries where {n} are laid out",
            y.len()
        );
        self.call(self.compiled.observe, y, out, self.compiled.scratch.1);
    }

    fn backend(&self) -> Backend {
        Backend::Jit
    }

    fn compile_seconds(&self) -> f64 {
        JitKernel::compile_seconds(self)
    }

    fn jacobian(&self, y: &[f64], jac: &mut [f64]) -> bool {
        let wanted = match self.jacobian_policy {
            JacobianPolicy::Always => true,
            // Averages by series or quadrature cost microseconds each, against nanoseconds for
            // the closed forms the node count's rates were measured with: there a Jacobian by
            // differences (n right-hand sides) always costs more than compiling the symbolic one.
            JacobianPolicy::WhenCheaper => {
                !self.activation.has_closed_forms() || symbolic_jacobian_pays_off(self.compiled.rhs_nodes, y.len())
            }
        };
        if !wanted {
            return false;
        }
        let Some((f, tables)) = self.compiled.jacobian(&self.model, self.k, self.activation) else {
            return false;
        };
        let n = self.state_len;
        assert!(
            y.len() == n && jac.len() >= n * n,
            "a state of {} entries where {n} are laid out",
            y.len()
        );
        let layout = Layout::new(&self.model, self.k, 1);
        let sums = tables
            .invariant
            .iter()
            .chain(&tables.per_mode)
            .flat_map(|(r, c)| [*r, *c])
            .filter_map(|ix| match ix {
                JacIx::Sum(m) => Some(m + 1),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let slots: Vec<Vec<(JacSlot, JacSlot)>> = [&tables.invariant, &tables.per_mode]
            .iter()
            .map(|t| t.iter().map(|(r, c)| (slot(*r, &layout), slot(*c, &layout))).collect())
            .collect();
        let mut builder = JacobianBuilder::new(jac, n, layout.n_scalar, sums, self.rho.len());
        let (mut invariant, mut per_mode) = (vec![0.0; tables.invariant.len()], vec![0.0; tables.per_mode.len()]);
        {
            let mut target = JacobianTarget {
                builder: &mut builder,
                tables: &slots,
            };
            let mut ctx = self.context(&mut []);
            ctx.jac_invariant = invariant.as_mut_ptr();
            ctx.jac_mode = per_mode.as_mut_ptr();
            // SAFETY: as for the right-hand side; the blocks' buffers hold one number per
            // table slot, and `out` is the hand-over target `jac_put` expects.
            unsafe { f(&ctx, y.as_ptr(), (&mut target as *mut JacobianTarget).cast::<f64>()) }
        }
        builder.finish();
        true
    }
}
