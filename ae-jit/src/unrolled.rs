//! Machine code for an unrolled program (a fixed K): the schedule's steps as straight-line code
//! with one loop over the modes per level of mode sums, exactly as the Rust emitter writes it.
//!
//! Functions take `(ctx, y, out)`: `ctx` is a [`Context`], `y` the state, `out` the derivative
//! or the observables. A Jacobian function takes the Jacobian's hand-over target in `out` and
//! writes each block of entries into the context's buffers before handing it over.

use std::collections::HashMap;

use ae_dsl::layout::Layout;
use ae_dsl::schedule::{is_leaf, schedule, Step};
use ae_dsl::unroll::{JacIx, Node, NodeId, Program, Target};
use cranelift_codegen::ir::{types, InstBuilder, MemFlags, Value};
use cranelift_frontend::Variable;

use crate::codegen::{Codegen, CTX_JAC_INVARIANT, CTX_JAC_MODE, CTX_M, CTX_PARAMS, CTX_RHO};

/// The Jacobian blocks of a program: the slot tables the hand-over needs, in the order the code
/// hands them over (0: the block outside the mode loop, 1: the block per mode).
#[derive(Debug, Default, Clone)]
pub struct JacobianTables {
    pub invariant: Vec<(JacIx, JacIx)>,
    pub per_mode: Vec<(JacIx, JacIx)>,
}

/// Emits one unrolled program into the function `cg` is building; returns the Jacobian tables
/// (empty for a right-hand side or the observables).
pub(crate) fn emit(cg: &mut Codegen, program: &Program, layout: &Layout) -> JacobianTables {
    let schedule = schedule(program);
    let mut em = Emitter {
        program,
        layout,
        invariant: vec![None; program.nodes.len()],
        varying: HashMap::new(),
        parts: HashMap::new(),
        in_loop: Vec::new(),
        params: HashMap::new(),
        params_ptr: None,
        rho_ptr: None,
        bases: HashMap::new(),
        tau: None,
        rho_t: None,
        tables: JacobianTables::default(),
    };
    let m = cg.load_ctx(types::I64, CTX_M);
    em.params_ptr = Some(cg.load_ctx(types::I64, CTX_PARAMS));
    em.rho_ptr = Some(cg.load_ctx(types::I64, CTX_RHO));
    for &state in &schedule.mode_states {
        let before = layout.mode_entries_before(state) as i64;
        let scaled = cg.b.ins().imul_imm(m, before);
        let base = cg.b.ins().iadd_imm(scaled, layout.n_scalar as i64);
        em.bases.insert(state, base);
    }
    for step in &schedule.steps {
        em.step(cg, step, m);
    }
    em.tables
}

struct Emitter<'p> {
    program: &'p Program,
    layout: &'p Layout,
    /// Values of mode-independent nodes, defined in the straight-line part of the function.
    invariant: Vec<Option<Value>>,
    /// Values of mode-dependent nodes inside the current mode loop (cleared at its end).
    varying: HashMap<NodeId, Value>,
    /// The components of each gradient node.
    parts: HashMap<NodeId, Vec<Value>>,
    /// The nodes computed in the current mode loop, whose values end with it.
    in_loop: Vec<NodeId>,
    params: HashMap<usize, Value>,
    /// The parameters and the modes' eigenvalues, loaded once at the function's entry.
    params_ptr: Option<Value>,
    rho_ptr: Option<Value>,
    /// The start of each mode state's block in the state vector.
    bases: HashMap<usize, Value>,
    /// The current mode and its eigenvalue, inside a mode loop.
    tau: Option<Value>,
    rho_t: Option<Value>,
    tables: JacobianTables,
}

impl Emitter<'_> {
    fn step(&mut self, cg: &mut Codegen, step: &Step, m: Value) {
        match step {
            Step::Invariants(ids) => ids.iter().for_each(|id| self.compute(cg, *id)),
            Step::ModeSums { sums, bodies, cone } => {
                let accs: Vec<Variable> = sums.iter().map(|_| cg.b.declare_var(types::F64)).collect();
                let zero = cg.b.ins().f64const(0.0);
                accs.iter().for_each(|a| cg.b.def_var(*a, zero));
                cg.counted_loop(m, |cg, tau| {
                    self.enter_mode(cg, tau);
                    cone.iter().for_each(|id| self.compute(cg, *id));
                    for (acc, body) in accs.iter().zip(bodies) {
                        let v = self.value(cg, *body);
                        let old = cg.b.use_var(*acc);
                        let new = cg.b.ins().fadd(old, v);
                        cg.b.def_var(*acc, new);
                    }
                    self.leave_mode();
                });
                for (s, acc) in sums.iter().zip(accs) {
                    self.invariant[*s] = Some(cg.b.use_var(acc));
                }
            }
            Step::Stores(stores) => {
                for (target, id) in stores {
                    let v = self.value(cg, *id);
                    self.store(cg, *target, v);
                }
            }
            Step::JacobianInvariant(entries) => {
                let buffer = cg.load_ctx(types::I64, CTX_JAC_INVARIANT);
                self.jacobian_block(cg, entries, buffer);
                let table = cg.b.ins().iconst(types::I64, 0);
                let tau = cg.b.ins().iconst(types::I64, 0);
                cg.jac_put(table, buffer, tau);
                self.tables.invariant = entries.iter().map(|(r, c, _)| (*r, *c)).collect();
            }
            Step::ModeOutputs { cone, stores, jacobian } => {
                let buffer = (!jacobian.is_empty()).then(|| cg.load_ctx(types::I64, CTX_JAC_MODE));
                cg.counted_loop(m, |cg, tau| {
                    self.enter_mode(cg, tau);
                    cone.iter().for_each(|id| self.compute(cg, *id));
                    for (target, id) in stores {
                        let v = self.value(cg, *id);
                        self.store(cg, *target, v);
                    }
                    if let Some(buffer) = buffer {
                        self.jacobian_block(cg, jacobian, buffer);
                        let table = cg.b.ins().iconst(types::I64, 1);
                        cg.jac_put(table, buffer, tau);
                    }
                    self.leave_mode();
                });
                self.tables.per_mode = jacobian.iter().map(|(r, c, _)| (*r, *c)).collect();
            }
        }
    }

    fn enter_mode(&mut self, cg: &mut Codegen, tau: Value) {
        let rho = self.rho_ptr.expect("loaded at the entry");
        let rho_t = cg.load_at(rho, tau, 0);
        self.tau = Some(tau);
        self.rho_t = Some(rho_t);
    }

    fn leave_mode(&mut self) {
        self.tau = None;
        self.rho_t = None;
        for id in self.in_loop.drain(..) {
            self.parts.remove(&id);
        }
        self.varying.clear();
    }

    /// Stores each entry's value into `buffer`, in the block's order.
    fn jacobian_block(&mut self, cg: &mut Codegen, entries: &[(JacIx, JacIx, NodeId)], buffer: Value) {
        for (i, (_, _, id)) in entries.iter().enumerate() {
            let v = self.value(cg, *id);
            cg.b.ins().store(MemFlags::trusted(), v, buffer, (8 * i) as i32);
        }
    }

    /// The position of a mode state's entry at the current mode: `base + tau * stride + entry`.
    fn mode_index(&self, cg: &mut Codegen, state: usize, entry: usize) -> Value {
        let tau = self.tau.expect("mode entries are read inside a mode loop");
        let stride = self.layout.blocks[state].entries as i64;
        let scaled = cg.b.ins().imul_imm(tau, stride);
        let at = cg.b.ins().iadd(self.bases[&state], scaled);
        cg.b.ins().iadd_imm(at, entry as i64)
    }

    fn store(&mut self, cg: &mut Codegen, target: Target, v: Value) {
        let out = cg.out;
        match target {
            Target::Y(i) | Target::Out(i) => {
                cg.b.ins().store(MemFlags::trusted(), v, out, (8 * i) as i32);
            }
            Target::ModeY { state, entry } => {
                let index = self.mode_index(cg, state, entry);
                cg.store_at(out, index, v);
            }
            Target::Jac { .. } => unreachable!("Jacobian entries go through their blocks"),
        }
    }

    /// A node's value: leaves read where they are used, operations from where they were
    /// computed (the schedule computes every operation before its readers).
    fn value(&mut self, cg: &mut Codegen, id: NodeId) -> Value {
        if let Some(v) = self.varying.get(&id).copied().or(self.invariant[id]) {
            return v;
        }
        match &self.program.nodes[id] {
            Node::Const(bits) => cg.b.ins().f64const(f64::from_bits(*bits)),
            Node::Param(i) => {
                let i = *i;
                if let Some(v) = self.params.get(&i) {
                    return *v;
                }
                // Parameters are read once, at first use outside any loop, or per use inside.
                let params = self.params_ptr.expect("loaded at the entry");
                let v = cg.b.ins().load(types::F64, MemFlags::trusted(), params, (8 * i) as i32);
                if self.tau.is_none() {
                    self.params.insert(i, v);
                }
                v
            }
            Node::Y(i) => {
                let v = cg.b.ins().load(types::F64, MemFlags::trusted(), cg.y, (8 * i) as i32);
                if self.tau.is_none() {
                    self.invariant[id] = Some(v);
                } else {
                    self.varying.insert(id, v);
                }
                v
            }
            Node::Rho => self.rho_t.expect("rho is read inside a mode loop"),
            Node::ModeY { state, entry } => {
                let index = self.mode_index(cg, *state, *entry);
                let v = cg.load_at(cg.y, index, 0);
                self.varying.insert(id, v);
                v
            }
            Node::Part(grad, j) => self.parts[grad][*j],
            other => unreachable!("operation {other:?} read before the schedule computed it"),
        }
    }

    /// Computes an operation node into its value.
    fn compute(&mut self, cg: &mut Codegen, id: NodeId) {
        let node = self.program.nodes[id].clone();
        debug_assert!(!is_leaf(&node));
        let v = match node {
            Node::Neg(a) => {
                let a = self.value(cg, a);
                cg.b.ins().fneg(a)
            }
            Node::Add(a, b) | Node::Sub(a, b) | Node::Mul(a, b) | Node::Div(a, b) => {
                let (x, y) = (self.value(cg, a), self.value(cg, b));
                match node {
                    Node::Add(..) => cg.b.ins().fadd(x, y),
                    Node::Sub(..) => cg.b.ins().fsub(x, y),
                    Node::Mul(..) => cg.b.ins().fmul(x, y),
                    _ => cg.b.ins().fdiv(x, y),
                }
            }
            Node::Powi(a, n) => {
                let a = self.value(cg, a);
                cg.powi(a, n)
            }
            Node::Func(f, a) => {
                let a = self.value(cg, a);
                cg.func(f, a)
            }
            Node::ModeSum(_) => unreachable!("mode sums are computed by their loop"),
            Node::Avg(avg, args) => {
                let args: Vec<Value> = args.iter().map(|a| self.value(cg, *a)).collect();
                cg.average(avg, &args)
            }
            Node::AvgGrad(avg, args) => {
                // A gradient has no value of its own; its parts do.
                let args: Vec<Value> = args.iter().map(|a| self.value(cg, *a)).collect();
                let parts = cg.average_gradient(avg, &args);
                self.parts.insert(id, parts);
                if self.tau.is_some() {
                    self.in_loop.push(id);
                }
                return;
            }
            other => unreachable!("not an operation node: {other:?}"),
        };
        // Inside a mode loop the schedule computes only mode-dependent nodes (its cone).
        if self.tau.is_some() {
            self.varying.insert(id, v);
            self.in_loop.push(id);
        } else {
            self.invariant[id] = Some(v);
        }
    }
}
