//! The run-time compiler of equation files: the front end's programs (unrolled for a fixed K,
//! with the symbolic Jacobian, or the K-generic lowering) as machine code, through Cranelift.
//!
//! Gaussian averages, functions without an instruction and the K-generic matrix products are
//! calls into the runtime (`symbols`); everything else is emitted directly. Compiled code is
//! cached per (source text, K, activation, shape) within a process, so a `compare` or a
//! `reproduce` compiles each model once.

mod activation;
mod codegen;
mod generic;
mod kernel;
mod symbols;
mod unrolled;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use ae_core::activation::Activation;
use ae_dsl::Model;
use cranelift_codegen::ir::{types, AbiParam, UserFuncName};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::FunctionBuilderContext;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};

pub use activation::{user_activation, ActivationError, CHECKED_RANGE};
pub use generic::{scratch_layout, ScratchLayout};
pub use kernel::JitKernel;
pub use unrolled::JacobianTables;

use codegen::Codegen;
use symbols::AverageSource;

/// Why code could not be compiled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JitError {
    #[error("the unrolled equations for K = {k} would have about {nodes} operations, more than the {limit} the compiler takes (the K-generic code serves this K)")]
    TooLarge { k: usize, nodes: usize, limit: usize },
    #[error("code generation failed: {0}")]
    Codegen(String),
}

/// How the code is organised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// Straight-line code for a fixed K (hash-consed, every average once), with the symbolic
    /// Jacobian compiled on first use.
    Unrolled,
    /// Loops over the hidden units (code size independent of K).
    Generic,
}

/// Unrolled programs larger than this many nodes are refused (they would take seconds to
/// compile); the K-generic code serves such K.
pub const MAX_UNROLLED_NODES: usize = 600_000;

/// The largest K compiled unrolled by default: beyond, the K-generic loops run as fast (their
/// per-mode work is matrix products) and compile in constant time.
pub const MAX_UNROLLED_K: usize = 16;

/// The shape `choose` takes for (model, K): unrolled up to [`MAX_UNROLLED_K`], K-generic
/// beyond.
pub fn default_shape(k: usize) -> Shape {
    if k <= MAX_UNROLLED_K {
        Shape::Unrolled
    } else {
        Shape::Generic
    }
}

/// Whether compiling the symbolic Jacobian of an unrolled right-hand side of `rhs_nodes`
/// operations is estimated to cost less than differencing it over a run, for a state of `n`
/// entries. Counted, not timed (the choice must not depend on the machine's load), from
/// measured rates (`cargo bench --bench jit`): compiling takes about 1.7 µs per operation of the
/// Jacobian, which has about 5 times the right-hand side's; a right-hand side evaluates at
/// about 0.5 ns per operation; a stiff run forms about 60 Jacobians (543 BDF steps, 60
/// Jacobians for the default run), each by differences n right-hand sides.
/// Vanilla K = 3 (n = 45) differences; K = 9 (n = 378) and beyond compile.
pub fn symbolic_jacobian_pays_off(rhs_nodes: usize, n: usize) -> bool {
    let compile = 1.7e-6 * 5.0 * rhs_nodes as f64;
    let differences = 60.0 * n as f64 * 0.5e-9 * rhs_nodes as f64;
    compile < differences
}

/// When a JIT kernel offers its symbolic Jacobian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JacobianPolicy {
    /// When compiling it is estimated to cost less than differences ([`symbolic_jacobian_pays_off`]).
    WhenCheaper,
    /// Always (compiled at its first use).
    Always,
}

/// A compiled function: `(context, state, output)`.
pub(crate) type RawFn = unsafe extern "C" fn(*const kernel::Context, *const f64, *mut f64);

/// Code compiled for one (source, K, activation, shape), shared by every kernel made of it.
pub struct Compiled {
    /// Own the executable memory the function pointers point into: the module of the
    /// right-hand side and observables, then that of the Jacobian once compiled.
    modules: Mutex<Vec<JITModule>>,
    pub(crate) rhs: RawFn,
    pub(crate) observe: RawFn,
    pub shape: Shape,
    /// Scratch numbers a K-generic call needs (rhs, observables); 0 for unrolled code.
    pub(crate) scratch: (usize, usize),
    /// The Jacobian (unrolled code only), compiled at its first use.
    pub(crate) jacobian: OnceLock<Option<(RawFn, JacobianTables)>>,
    /// Seconds spent compiling the right-hand side and the observables.
    pub compile_seconds: f64,
    /// Operations of the unrolled right-hand side (0 for K-generic code): what the cost of a
    /// Jacobian, compiled or by differences, is estimated from.
    pub(crate) rhs_nodes: usize,
    /// Seconds spent compiling the Jacobian, once it was.
    pub(crate) jacobian_seconds: Mutex<f64>,
}

// SAFETY: the compiled code is immutable once finalized and reentrant (every call gets its
// own context and buffers); the modules are only touched behind their mutexes, to be kept
// alive.
unsafe impl Send for Compiled {}
// SAFETY: as above.
unsafe impl Sync for Compiled {}

/// A new module for the host, with the runtime's functions as its symbols, for code of `shape`.
pub(crate) fn new_module(shape: Shape) -> Result<JITModule, JitError> {
    let codegen = |e: &dyn std::fmt::Display| JitError::Codegen(e.to_string());
    let mut flags = settings::builder();
    flags.set("use_colocated_libcalls", "false").map_err(|e| codegen(&e))?;
    flags.set("is_pic", "false").map_err(|e| codegen(&e))?;
    flags.set("opt_level", "speed").map_err(|e| codegen(&e))?;
    // Unrolled code gets the single-pass register allocator: the backtracking one took 650 ms
    // over the 30 000 straight-line operations of vanilla's K = 6 Jacobian against 52 ms (its
    // live ranges span the whole function), for a right-hand side 1.3x faster (`cargo bench
    // --bench jit`). K-generic code is small and all loops, whose counters and accumulators the
    // single-pass allocator keeps in memory: there the backtracking one pays.
    let allocator = match shape {
        Shape::Unrolled => "single_pass",
        Shape::Generic => "backtracking",
    };
    flags.set("regalloc_algorithm", allocator).map_err(|e| codegen(&e))?;
    // The verifier runs in debug builds, where the tests run.
    let verify = if cfg!(debug_assertions) { "true" } else { "false" };
    flags.set("enable_verifier", verify).map_err(|e| codegen(&e))?;
    let isa = cranelift_native::builder()
        .map_err(|e| codegen(&e))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| codegen(&e))?;
    let mut builder = JITBuilder::with_isa(isa, default_libcall_names());
    builder.symbols(symbols::table());
    Ok(JITModule::new(builder))
}

/// Builds one function `(ctx, y, out)` in `module` with `body`; returns its id and, if asked,
/// its IR as text.
pub(crate) fn define(
    module: &mut JITModule,
    name: &str,
    averages: AverageSource,
    keep_ir: bool,
    body: impl FnOnce(&mut Codegen),
) -> Result<(cranelift_module::FuncId, Option<String>), JitError> {
    let pointer = types::I64;
    let mut ctx = module.make_context();
    for _ in 0..3 {
        ctx.func.signature.params.push(AbiParam::new(pointer));
    }
    let id = module
        .declare_function(name, Linkage::Local, &ctx.func.signature)
        .map_err(|e| JitError::Codegen(e.to_string()))?;
    ctx.func.name = UserFuncName::user(0, id.as_u32());
    let mut builder_ctx = FunctionBuilderContext::new();
    {
        let b = cranelift_frontend::FunctionBuilder::new(&mut ctx.func, &mut builder_ctx);
        let mut cg = Codegen::new(b, module, averages);
        body(&mut cg);
        cg.finish();
    }
    let ir = keep_ir.then(|| ctx.func.display().to_string());
    module
        .define_function(id, &mut ctx)
        .map_err(|e| JitError::Codegen(format!("{e:?}")))?;
    module.clear_context(&mut ctx);
    Ok((id, ir))
}

/// Where the averages of `activation` are called: closed forms inlined or called by name, or a
/// user activation's quadrature through the context's activation pointer.
fn average_source(activation: Activation) -> AverageSource {
    match activation {
        Activation::Builtin(a) => AverageSource::Builtin(a),
        Activation::User(_) => AverageSource::User,
    }
}

/// Which function of a model to compile.
#[derive(Clone, Copy)]
enum Which {
    Rhs,
    Observe,
}

/// One function of `model`, in a module of its own: the module, the function and, for unrolled
/// right-hand sides, the program's size.
fn compile_function(
    model: &Model,
    k: usize,
    averages: AverageSource,
    shape: Shape,
    which: Which,
) -> Result<(JITModule, RawFn, usize), JitError> {
    let mut module = new_module(shape)?;
    let (name, mut nodes) = (if matches!(which, Which::Rhs) { "rhs" } else { "observe" }, 0);
    let (id, _) = match shape {
        Shape::Unrolled => {
            let inline = match averages {
                AverageSource::Builtin(a) => Some(a),
                AverageSource::User => None,
            };
            let program = match which {
                Which::Rhs => ae_dsl::unroll::unroll_rhs_inlined(model, k, inline),
                Which::Observe => ae_dsl::unroll::unroll_observables_inlined(model, k, inline),
            };
            if program.nodes.len() > MAX_UNROLLED_NODES {
                return Err(JitError::TooLarge {
                    k,
                    nodes: program.nodes.len(),
                    limit: MAX_UNROLLED_NODES,
                });
            }
            nodes = program.nodes.len();
            let layout = ae_dsl::layout::Layout::new(model, k, 1);
            define(&mut module, name, averages, false, |cg| {
                unrolled::emit(cg, &program, &layout);
            })?
        }
        Shape::Generic => {
            let plan = ae_dsl::generic::lower(model);
            let function = match which {
                Which::Rhs => generic::Function::Rhs,
                Which::Observe => generic::Function::Observe,
            };
            define(&mut module, name, averages, false, |cg| {
                generic::emit(cg, model, &plan, k, function);
            })?
        }
    };
    module
        .finalize_definitions()
        .map_err(|e| JitError::Codegen(e.to_string()))?;
    // SAFETY: defined with the signature (ptr, ptr, ptr) -> () of RawFn.
    let f = unsafe { std::mem::transmute::<*const u8, RawFn>(module.get_finalized_function(id)) };
    Ok((module, f, nodes))
}

/// The right-hand side and observables of `model` for `k` units, as machine code: compiled on
/// two threads at once (they are independent), which halves the wait on two cores.
fn compile_uncached(model: &Model, k: usize, activation: Activation, shape: Shape) -> Result<Compiled, JitError> {
    let start = std::time::Instant::now();
    let averages = average_source(activation);
    let (observe, rhs) = std::thread::scope(|scope| {
        let observe = scope.spawn(|| compile_function(model, k, averages, shape, Which::Observe).map(Sendable));
        let rhs = compile_function(model, k, averages, shape, Which::Rhs);
        (observe.join(), rhs)
    });
    let (rhs_module, rhs, rhs_nodes) = rhs?;
    let Sendable((observe_module, observe, _)) =
        observe.map_err(|_| JitError::Codegen("the compiling thread panicked".into()))??;
    let scratch = match shape {
        Shape::Unrolled => (0, 0),
        Shape::Generic => {
            let plan = ae_dsl::generic::lower(model);
            let rhs_outputs: Vec<&ae_dsl::generic::Output> = plan.rhs.iter().collect();
            let obs_outputs: Vec<&ae_dsl::generic::Output> = plan.observables.iter().collect();
            (
                scratch_layout(model, &plan, &rhs_outputs, k).len,
                scratch_layout(model, &plan, &obs_outputs, k).len,
            )
        }
    };
    Ok(Compiled {
        modules: Mutex::new(vec![rhs_module, observe_module]),
        rhs,
        observe,
        shape,
        scratch,
        jacobian: OnceLock::new(),
        compile_seconds: start.elapsed().as_secs_f64(),
        rhs_nodes,
        jacobian_seconds: Mutex::new(0.0),
    })
}

/// A compiled module handed from the thread that compiled it to the one that keeps it.
pub(crate) struct Sendable<T>(pub(crate) T);

// SAFETY: a finalized module is moved whole to the thread that owns it from then on; nothing
// of it stays behind in the compiling thread.
unsafe impl<T> Send for Sendable<T> {}

impl Compiled {
    /// The Jacobian's code, compiled at the first call (None: none for this shape or
    /// activation, or it could not be compiled: callers then difference the right-hand side).
    pub(crate) fn jacobian(&self, model: &Model, k: usize, activation: Activation) -> Option<&(RawFn, JacobianTables)> {
        self.jacobian
            .get_or_init(|| {
                if self.shape != Shape::Unrolled || !activation.has_exact_gradients() {
                    return None;
                }
                let start = std::time::Instant::now();
                let compiled = compile_jacobian(model, k, activation, self.rhs_nodes).ok()?;
                *self.jacobian_seconds.lock().ok()? += start.elapsed().as_secs_f64();
                let (module, f, tables) = compiled;
                self.modules.lock().ok()?.push(module);
                Some((f, tables))
            })
            .as_ref()
    }
}

/// A Jacobian has about this many times the operations of its right-hand side (measured for
/// vanilla at K = 3..16: 4.2 to 5.2), which lets a Jacobian too large to compile be refused
/// before it is built.
const JACOBIAN_NODES_PER_RHS_NODE: usize = 6;

fn compile_jacobian(
    model: &Model,
    k: usize,
    activation: Activation,
    rhs_nodes: usize,
) -> Result<(JITModule, RawFn, JacobianTables), JitError> {
    let estimate = JACOBIAN_NODES_PER_RHS_NODE * rhs_nodes;
    if estimate > MAX_UNROLLED_NODES {
        return Err(JitError::TooLarge {
            k,
            nodes: estimate,
            limit: MAX_UNROLLED_NODES,
        });
    }
    let program = ae_dsl::jacobian::unroll_jacobian_inlined(model, k, activation.builtin());
    if program.nodes.len() > MAX_UNROLLED_NODES {
        return Err(JitError::TooLarge {
            k,
            nodes: program.nodes.len(),
            limit: MAX_UNROLLED_NODES,
        });
    }
    let layout = ae_dsl::layout::Layout::new(model, k, 1);
    let mut module = new_module(Shape::Unrolled)?;
    let mut tables = JacobianTables::default();
    let (id, _) = define(&mut module, "jacobian", average_source(activation), false, |cg| {
        tables = unrolled::emit(cg, &program, &layout);
    })?;
    module
        .finalize_definitions()
        .map_err(|e| JitError::Codegen(e.to_string()))?;
    // SAFETY: defined with the signature of RawFn.
    let f = unsafe { std::mem::transmute::<*const u8, RawFn>(module.get_finalized_function(id)) };
    Ok((module, f, tables))
}

/// What compiled code is cached under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    source: u64,
    k: usize,
    activation: Activation,
    shape: Shape,
}

fn cache() -> &'static Mutex<HashMap<Key, Arc<Compiled>>> {
    static CACHE: OnceLock<Mutex<HashMap<Key, Arc<Compiled>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn hash_source(source: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    source.hash(&mut h);
    h.finish()
}

/// The compiled code of (source, K, activation, shape): from this process's cache, or compiled
/// now. The second element says whether it was compiled by this call.
pub fn compile(
    model: &Model,
    source: &str,
    k: usize,
    activation: Activation,
    shape: Shape,
) -> Result<(Arc<Compiled>, bool), JitError> {
    let key = Key {
        source: hash_source(source),
        k,
        activation,
        shape,
    };
    if let Some(found) = cache().lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok((found, false));
    }
    let compiled = Arc::new(compile_uncached(model, k, activation, shape)?);
    if let Ok(mut c) = cache().lock() {
        c.insert(key, compiled.clone());
    }
    Ok((compiled, true))
}

/// The Cranelift IR of the right-hand side (for snapshots and for reading).
pub fn rhs_ir(model: &Model, k: usize, activation: Activation, shape: Shape) -> Result<String, JitError> {
    let mut module = new_module(shape)?;
    let averages = average_source(activation);
    let (_, ir) = match shape {
        Shape::Unrolled => {
            let program = ae_dsl::unroll::unroll_rhs_inlined(model, k, activation.builtin());
            let layout = ae_dsl::layout::Layout::new(model, k, 1);
            define(&mut module, "rhs", averages, true, |cg| {
                unrolled::emit(cg, &program, &layout);
            })?
        }
        Shape::Generic => {
            let plan = ae_dsl::generic::lower(model);
            define(&mut module, "rhs", averages, true, |cg| {
                generic::emit(cg, model, &plan, k, generic::Function::Rhs);
            })?
        }
    };
    Ok(ir.unwrap_or_default())
}
