//! Machine code for the K-generic lowering ([`ae_dsl::generic`]): loops over the hidden units
//! instead of unrolled code, so that the code's size does not grow with K. K is a constant of
//! each compiled kernel (the cache keys on it), so loop bounds, strides and the offsets of the
//! hoisted arrays are constants; the number of modes is read at run time.
//!
//! The scratch buffer the context points to holds the hoisted arrays (zeroed by the caller: mode
//! sums accumulate into them), then K x K numbers for a Gram matrix and K x K for a matrix of
//! coefficients.

use std::collections::HashMap;

use ae_dsl::generic::{gram_group, linear_group, Group, Output, Plan, SumRange, TempDef, Value as Val, L};
use ae_dsl::ir::{CmpOp, Ix, Model, VarId};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};

use crate::codegen::{Codegen, CTX_M, CTX_PARAMS, CTX_RHO, CTX_SCRATCH};

/// Where things are for one K: the hoisted arrays a function needs and their offsets in the
/// scratch buffer, and the buffer's length.
#[derive(Debug, Clone, PartialEq)]
pub struct ScratchLayout {
    /// Offset of each hoisted array (None: not needed by this function).
    pub temps: Vec<Option<usize>>,
    /// Where the Gram matrix and the coefficient matrix go.
    pub gram: usize,
    pub coefficients: usize,
    /// Where each symmetric state without mode index is copied as a full K x K matrix, so that
    /// reading entry (i, j) is `i K + j` rather than the triangular position.
    pub unpacked: Vec<Option<usize>>,
    pub len: usize,
}

/// The hoisted arrays `outputs` need (directly or through other arrays), laid out for `k`.
pub fn scratch_layout(model: &Model, plan: &Plan, outputs: &[&Output], k: usize) -> ScratchLayout {
    let mut needed = vec![false; plan.temps.len()];
    let mut stack: Vec<usize> = Vec::new();
    for o in outputs {
        match &o.value {
            Val::Invariant(l) => visit_temps(l, &mut |id| stack.push(id)),
            Val::PerMode(groups) => groups.iter().for_each(|g| group_temps(g, &mut |id| stack.push(id))),
        }
    }
    while let Some(id) = stack.pop() {
        if needed[id] {
            continue;
        }
        needed[id] = true;
        match &plan.temps[id].def {
            TempDef::Expr(l) => visit_temps(l, &mut |t| stack.push(t)),
            TempDef::ModeSum(groups) => groups.iter().for_each(|g| group_temps(g, &mut |t| stack.push(t))),
        }
    }
    let mut end = 0;
    let temps = plan
        .temps
        .iter()
        .zip(&needed)
        .map(|(t, need)| {
            need.then(|| {
                let at = end;
                end += k.pow(t.vars.len() as u32);
                at
            })
        })
        .collect();
    let (gram, coefficients) = (end, end + k * k);
    end += 2 * k * k;
    let unpacked = model
        .states
        .iter()
        .map(|s| {
            (s.symmetric && !s.mode && s.hidden == 2).then(|| {
                let at = end;
                end += k * k;
                at
            })
        })
        .collect();
    ScratchLayout {
        temps,
        gram,
        coefficients,
        unpacked,
        len: end,
    }
}

fn visit_temps(l: &L, f: &mut dyn FnMut(usize)) {
    match l {
        L::Temp { id, .. } => f(*id),
        L::Func(_, a) | L::Neg(a) | L::Powi(a, _) => visit_temps(a, f),
        L::Add(a, b) | L::Sub(a, b) | L::Mul(a, b) | L::Div(a, b) => {
            visit_temps(a, f);
            visit_temps(b, f);
        }
        L::Avg(_, args) => args.iter().for_each(|a| visit_temps(a, f)),
        L::Sum { body, .. } => visit_temps(body, f),
        _ => {}
    }
}

fn group_temps(g: &Group, f: &mut dyn FnMut(usize)) {
    visit_temps(&g.coef, f);
    g.factors.iter().for_each(|x| visit_temps(x, f));
}

/// What the right-hand side or the observables compute.
pub(crate) enum Function {
    Rhs,
    Observe,
}

/// Emits the K-generic right-hand side or observables of `plan` for `k` hidden units.
pub(crate) fn emit(cg: &mut Codegen, model: &Model, plan: &Plan, k: usize, function: Function) {
    let outputs: Vec<&Output> = match function {
        Function::Rhs => plan.rhs.iter().collect(),
        Function::Observe => plan.observables.iter().collect(),
    };
    let scratch = scratch_layout(model, plan, &outputs, k);
    let m = cg.load_ctx(types::I64, CTX_M);
    let mut em = Emitter {
        model,
        plan,
        k,
        scratch,
        state_offsets: Vec::new(),
        vars: HashMap::new(),
        rho_t: None,
        tau: None,
        m,
        p: cg.load_ctx(types::I64, CTX_PARAMS),
        rho: cg.load_ctx(types::I64, CTX_RHO),
        s: cg.load_ctx(types::I64, CTX_SCRATCH),
    };
    em.state_offsets = em.offsets(cg);
    em.unpack(cg);
    for id in 0..plan.temps.len() {
        if em.scratch.temps[id].is_some() {
            em.temp(cg, id);
        }
    }
    match function {
        Function::Rhs => {
            for (state, out) in plan.rhs.iter().enumerate() {
                em.state_output(cg, state, out);
            }
        }
        Function::Observe => {
            let q = cg.b.declare_var(types::I64);
            let zero = cg.b.ins().iconst(types::I64, 0);
            cg.b.def_var(q, zero);
            for out in &plan.observables {
                em.observable(cg, out, q);
            }
        }
    }
}

struct Emitter<'p> {
    model: &'p Model,
    plan: &'p Plan,
    k: usize,
    scratch: ScratchLayout,
    /// Where each state's block starts (mode states: after `n_scalar + before * m` entries).
    state_offsets: Vec<Value>,
    /// The current value of each bound hidden-unit index.
    vars: HashMap<VarId, Value>,
    rho_t: Option<Value>,
    tau: Option<Value>,
    m: Value,
    p: Value,
    rho: Value,
    s: Value,
}

impl Emitter<'_> {
    fn entries(&self, state: usize) -> i64 {
        ae_dsl::layout::entries(
            self.k,
            self.model.states[state].hidden,
            self.model.states[state].symmetric,
        ) as i64
    }

    /// The offset of every state's block: the states without a mode index first, then one block
    /// per mode state, `m` times its entries.
    fn offsets(&self, cg: &mut Codegen) -> Vec<Value> {
        let states = &self.model.states;
        let n_scalar: i64 = (0..states.len())
            .filter(|s| !states[*s].mode)
            .map(|s| self.entries(s))
            .sum();
        let (mut scalar, mut per_mode) = (0i64, 0i64);
        (0..states.len())
            .map(|s| {
                if states[s].mode {
                    let scaled = cg.b.ins().imul_imm(self.m, per_mode);
                    per_mode += self.entries(s);
                    cg.b.ins().iadd_imm(scaled, n_scalar)
                } else {
                    let at = cg.b.ins().iconst(types::I64, scalar);
                    scalar += self.entries(s);
                    at
                }
            })
            .collect()
    }

    /// Copies every symmetric state without mode index into its full K x K scratch matrix.
    fn unpack(&mut self, cg: &mut Codegen) {
        let model = self.model;
        for (state, at) in self.scratch.unpacked.clone().into_iter().enumerate() {
            let Some(at) = at else { continue };
            let vars = [model.vars.len(), model.vars.len() + 1];
            self.loops(cg, &vars, &mut |em, cg| {
                let (i, j) = (Ix::Var(vars[0]), Ix::Var(vars[1]));
                let from = em.packed_index(cg, state, &[i, j]);
                let v = cg.load_at(cg.y, from, 0);
                let to = em.flat(cg, &[i, j]);
                let to = cg.b.ins().iadd_imm(to, at as i64);
                cg.store_at(em.s, to, v);
            });
        }
    }

    fn ix(&self, cg: &mut Codegen, ix: &Ix) -> Value {
        match ix {
            Ix::Var(v) => self.vars[v],
            Ix::Fixed(n) => cg.b.ins().iconst(types::I64, *n as i64),
        }
    }

    /// Row-major position of `args` in an array over K^len entries.
    fn flat(&self, cg: &mut Codegen, args: &[Ix]) -> Value {
        let mut acc: Option<Value> = None;
        for a in args {
            let a = self.ix(cg, a);
            acc = Some(match acc {
                None => a,
                Some(prev) => {
                    let scaled = cg.b.ins().imul_imm(prev, self.k as i64);
                    cg.b.ins().iadd(scaled, a)
                }
            });
        }
        acc.unwrap_or_else(|| cg.b.ins().iconst(types::I64, 0))
    }

    /// Position of a state entry within its block (symmetric states store `i <= j` once, row by
    /// row: `a K - a (a - 1) / 2 + (b - a)` with `a <= b`).
    fn entry(&self, cg: &mut Codegen, state: usize, hidden: &[Ix]) -> Value {
        let s = &self.model.states[state];
        match hidden {
            [] => cg.b.ins().iconst(types::I64, 0),
            [i] => self.ix(cg, i),
            [i, j] if s.symmetric => {
                let (i, j) = (self.ix(cg, i), self.ix(cg, j));
                let a = cg.b.ins().umin(i, j);
                let b = cg.b.ins().umax(i, j);
                let row = cg.b.ins().imul_imm(a, self.k as i64);
                let zero = cg.b.ins().iconst(types::I64, 0);
                let positive = cg.b.ins().icmp_imm(IntCC::UnsignedGreaterThan, a, 0);
                let less = cg.b.ins().iadd_imm(a, -1);
                let a_minus = cg.b.ins().select(positive, less, zero);
                let product = cg.b.ins().imul(a, a_minus);
                let half = cg.b.ins().ushr_imm(product, 1);
                let start = cg.b.ins().isub(row, half);
                let offset = cg.b.ins().isub(b, a);
                cg.b.ins().iadd(start, offset)
            }
            [i, j] => {
                let (i, j) = (self.ix(cg, i), self.ix(cg, j));
                let row = cg.b.ins().imul_imm(i, self.k as i64);
                cg.b.ins().iadd(row, j)
            }
            _ => unreachable!("at most two hidden-unit indices (checked by the resolver)"),
        }
    }

    /// Index in the state vector of an entry (at the current mode, for mode states).
    fn state_index(&self, cg: &mut Codegen, state: usize, hidden: &[Ix]) -> Value {
        self.packed_index(cg, state, hidden)
    }

    /// The value of a state entry: from its unpacked copy where it has one.
    fn read_state(&self, cg: &mut Codegen, state: usize, hidden: &[Ix]) -> Value {
        match self.scratch.unpacked[state] {
            Some(at) => {
                let flat = self.flat(cg, hidden);
                let i = cg.b.ins().iadd_imm(flat, at as i64);
                cg.load_at(self.s, i, 0)
            }
            None => {
                let i = self.state_index(cg, state, hidden);
                cg.load_at(cg.y, i, 0)
            }
        }
    }

    /// Index in the state vector of an entry as stored (symmetric states once per pair).
    fn packed_index(&self, cg: &mut Codegen, state: usize, hidden: &[Ix]) -> Value {
        let entry = self.entry(cg, state, hidden);
        let at = cg.b.ins().iadd(self.state_offsets[state], entry);
        if self.model.states[state].mode {
            let tau = self.tau.expect("mode entries are read inside a mode loop");
            let scaled = cg.b.ins().imul_imm(tau, self.entries(state));
            cg.b.ins().iadd(at, scaled)
        } else {
            at
        }
    }

    fn temp_index(&self, cg: &mut Codegen, id: usize, args: &[Ix]) -> Value {
        let offset = self.scratch.temps[id].expect("a needed temp has an offset") as i64;
        let flat = self.flat(cg, args);
        cg.b.ins().iadd_imm(flat, offset)
    }

    fn expr(&mut self, cg: &mut Codegen, l: &L) -> Value {
        match l {
            L::Num(v) => cg.b.ins().f64const(*v),
            L::Param(i) => {
                let p = self.p;
                cg.b.ins().load(
                    types::F64,
                    cranelift_codegen::ir::MemFlags::trusted(),
                    p,
                    (8 * i) as i32,
                )
            }
            L::Rho => self.rho_t.expect("rho is read inside a mode loop"),
            L::Y { state, hidden } | L::ModeY { state, hidden } => self.read_state(cg, *state, hidden),
            L::Temp { id, args } => {
                let i = self.temp_index(cg, *id, args);
                cg.load_at(self.s, i, 0)
            }
            L::Func(f, a) => {
                let a = self.expr(cg, a);
                cg.func(*f, a)
            }
            L::Neg(a) => {
                let a = self.expr(cg, a);
                cg.b.ins().fneg(a)
            }
            L::Add(a, b) | L::Sub(a, b) | L::Mul(a, b) | L::Div(a, b) => {
                let (x, y) = (self.expr(cg, a), self.expr(cg, b));
                match l {
                    L::Add(..) => cg.b.ins().fadd(x, y),
                    L::Sub(..) => cg.b.ins().fsub(x, y),
                    L::Mul(..) => cg.b.ins().fmul(x, y),
                    _ => cg.b.ins().fdiv(x, y),
                }
            }
            L::Powi(a, n) => {
                let a = self.expr(cg, a);
                cg.powi(a, *n)
            }
            L::Avg(avg, args) => {
                let args: Vec<Value> = args.iter().map(|a| self.expr(cg, a)).collect();
                cg.average(*avg, &args)
            }
            L::Sum { var, range, body } => {
                let acc = cg.b.declare_var(types::F64);
                let zero = cg.b.ins().f64const(0.0);
                cg.b.def_var(acc, zero);
                self.sum_loop(cg, *var, range, &mut |em, cg| {
                    let v = em.expr(cg, body);
                    let old = cg.b.use_var(acc);
                    let new = cg.b.ins().fadd(old, v);
                    cg.b.def_var(acc, new);
                });
                cg.b.use_var(acc)
            }
        }
    }

    /// A loop over a hidden-unit range with `var` bound to the unit.
    fn sum_loop(
        &mut self,
        cg: &mut Codegen,
        var: VarId,
        range: &SumRange,
        body: &mut dyn FnMut(&mut Self, &mut Codegen),
    ) {
        let kk = cg.b.ins().iconst(types::I64, self.k as i64);
        let zero = cg.b.ins().iconst(types::I64, 0);
        let (lo, hi, skip) = match range {
            None => (zero, kk, None),
            Some((op, other)) => {
                let x = self.ix(cg, other);
                match op {
                    CmpOp::Ne => (zero, kk, Some(x)),
                    CmpOp::Le => (zero, cg.b.ins().iadd_imm(x, 1), None),
                    CmpOp::Lt => (zero, x, None),
                    CmpOp::Ge => (x, kk, None),
                    CmpOp::Gt => (cg.b.ins().iadd_imm(x, 1), kk, None),
                }
            }
        };
        let previous = self.vars.get(&var).copied();
        cg.range_loop(lo, hi, skip, |cg, i| {
            self.vars.insert(var, i);
            body(self, cg);
        });
        self.restore(var, previous);
    }

    fn restore(&mut self, var: VarId, previous: Option<Value>) {
        match previous {
            Some(v) => self.vars.insert(var, v),
            None => self.vars.remove(&var),
        };
    }

    /// Loops over all values of `vars` (0..K each) around `body`.
    fn loops(&mut self, cg: &mut Codegen, vars: &[VarId], body: &mut dyn FnMut(&mut Self, &mut Codegen)) {
        match vars.split_first() {
            None => body(self, cg),
            Some((v, rest)) => {
                let v = *v;
                self.sum_loop(cg, v, &None, &mut |em, cg| em.loops(cg, rest, body));
            }
        }
    }

    /// Loops over the stored entries of a state (symmetric ones once, for k <= l).
    fn entry_loops(
        &mut self,
        cg: &mut Codegen,
        state: usize,
        vars: &[VarId],
        body: &mut dyn FnMut(&mut Self, &mut Codegen),
    ) {
        match vars {
            [k, l] if self.model.states[state].symmetric => {
                let (k, l) = (*k, *l);
                self.sum_loop(cg, k, &None, &mut |em, cg| {
                    em.sum_loop(cg, l, &Some((CmpOp::Ge, Ix::Var(k))), body);
                });
            }
            _ => self.loops(cg, vars, body),
        }
    }

    /// `for tau in 0..m` with the mode and its eigenvalue bound.
    fn mode_loop(&mut self, cg: &mut Codegen, body: &mut dyn FnMut(&mut Self, &mut Codegen)) {
        let (m, rho) = (self.m, self.rho);
        cg.counted_loop(m, |cg, tau| {
            self.tau = Some(tau);
            self.rho_t = Some(cg.load_at(rho, tau, 0));
            body(self, cg);
            self.tau = None;
            self.rho_t = None;
        });
    }

    /// `acc += coef * factors...` inside the group's sums.
    fn group_accumulate(&mut self, cg: &mut Codegen, g: &Group, acc: cranelift_frontend::Variable, depth: usize) {
        if depth == g.sums.len() {
            let mut v = self.expr(cg, &g.coef);
            for f in &g.factors {
                let f = self.expr(cg, f);
                v = cg.b.ins().fmul(v, f);
            }
            let old = cg.b.use_var(acc);
            let new = cg.b.ins().fadd(old, v);
            cg.b.def_var(acc, new);
            return;
        }
        let (var, range) = g.sums[depth];
        self.sum_loop(cg, var, &range, &mut |em, cg| {
            em.group_accumulate(cg, g, acc, depth + 1)
        });
    }

    /// `acc = 0; every group; then `finish(acc)`.
    fn accumulate_groups(&mut self, cg: &mut Codegen, groups: &[&Group]) -> Value {
        let acc = cg.b.declare_var(types::F64);
        let zero = cg.b.ins().f64const(0.0);
        cg.b.def_var(acc, zero);
        for g in groups {
            self.group_accumulate(cg, g, acc, 0);
        }
        cg.b.use_var(acc)
    }

    fn temp(&mut self, cg: &mut Codegen, id: usize) {
        let plan = self.plan;
        let t = &plan.temps[id];
        let args: Vec<Ix> = t.vars.iter().map(|v| Ix::Var(*v)).collect();
        match &t.def {
            TempDef::Expr(l) => self.loops(cg, &t.vars, &mut |em, cg| {
                let v = em.expr(cg, l);
                let at = em.temp_index(cg, id, &args);
                cg.store_at(em.s, at, v);
            }),
            TempDef::ModeSum(groups) => {
                let mut rest = Vec::new();
                for g in groups {
                    match gram_group(self.model, &t.vars, g) {
                        Some(gg) => {
                            let gram = self.gram(cg, gg.left, gg.right, gg.power);
                            self.loops(cg, &t.vars, &mut |em, cg| {
                                let coef = em.expr(cg, &g.coef);
                                let flat = em.flat(cg, &args);
                                let value = cg.load_at(gram, flat, 0);
                                let term = cg.b.ins().fmul(coef, value);
                                let at = em.temp_index(cg, id, &args);
                                let old = cg.load_at(em.s, at, 0);
                                let new = cg.b.ins().fadd(old, term);
                                cg.store_at(em.s, at, new);
                            });
                        }
                        None => rest.push(g),
                    }
                }
                if !rest.is_empty() {
                    self.mode_loop(cg, &mut |em, cg| {
                        em.loops(cg, &t.vars, &mut |em, cg| {
                            let acc = em.accumulate_groups(cg, &rest);
                            let at = em.temp_index(cg, id, &args);
                            let old = cg.load_at(em.s, at, 0);
                            let new = cg.b.ins().fadd(old, acc);
                            cg.store_at(em.s, at, new);
                        })
                    });
                }
            }
        }
    }

    /// The Gram matrix `Σ_τ ρ^power y1[τ, k] y2[τ, l]` into its scratch region; its address.
    fn gram(&mut self, cg: &mut Codegen, left: usize, right: usize, power: usize) -> Value {
        let k = cg.b.ins().iconst(types::I64, self.k as i64);
        let power = cg.b.ins().iconst(types::I64, power as i64);
        let y1 = cg.address(cg.y, self.state_offsets[left]);
        let y2 = cg.address(cg.y, self.state_offsets[right]);
        let gram_at = cg.b.ins().iconst(types::I64, self.scratch.gram as i64);
        let out = cg.address(self.s, gram_at);
        cg.product("gram", &[k, self.m, self.rho, power, y1, y2, out]);
        out
    }

    fn state_output(&mut self, cg: &mut Codegen, state: usize, out: &Output) {
        let args: Vec<Ix> = out.vars.iter().map(|v| Ix::Var(*v)).collect();
        match &out.value {
            Val::Invariant(l) => self.entry_loops(cg, state, &out.vars, &mut |em, cg| {
                let v = em.expr(cg, l);
                let at = em.state_index(cg, state, &args);
                cg.store_at(cg.out, at, v);
            }),
            Val::PerMode(groups) => self.per_mode_output(cg, state, out, groups, &args),
        }
    }

    /// A mode state's right-hand side: the groups linear in one K-vector of mode states as one
    /// matrix product per (source, power of rho), the others per mode.
    fn per_mode_output(&mut self, cg: &mut Codegen, state: usize, out: &Output, groups: &[Group], args: &[Ix]) {
        let mut buckets: Vec<((usize, usize), Vec<&Group>)> = Vec::new();
        let mut rest = Vec::new();
        for g in groups {
            match linear_group(self.model, &out.vars, g) {
                Some(lg) => match buckets.iter_mut().find(|(key, _)| *key == (lg.source, lg.power)) {
                    Some((_, list)) => list.push(g),
                    None => buckets.push(((lg.source, lg.power), vec![g])),
                },
                None => rest.push(g),
            }
        }
        if rest.is_empty() {
            let n = cg.b.ins().imul_imm(self.m, self.entries(state));
            let off = self.state_offsets[state];
            let zero = cg.b.ins().f64const(0.0);
            cg.counted_loop(n, |cg, i| {
                let at = cg.b.ins().iadd(off, i);
                cg.store_at(cg.out, at, zero);
            });
        } else {
            self.mode_loop(cg, &mut |em, cg| {
                em.entry_loops(cg, state, &out.vars, &mut |em, cg| {
                    let acc = em.accumulate_groups(cg, &rest);
                    let at = em.state_index(cg, state, args);
                    cg.store_at(cg.out, at, acc);
                })
            });
        }
        for ((source, power), list) in buckets {
            self.coefficient_product(cg, state, out, source, power, &list);
        }
    }

    /// `out[τ, k] += ρ^power Σ_a C[k, a] y[τ, a]` with C filled from the groups of one bucket.
    fn coefficient_product(
        &mut self,
        cg: &mut Codegen,
        state: usize,
        out: &Output,
        source: usize,
        power: usize,
        list: &[&Group],
    ) {
        let kk = self.k as i64;
        let c_at = cg.b.ins().iconst(types::I64, self.scratch.coefficients as i64);
        let c = cg.address(self.s, c_at);
        let n = cg.b.ins().iconst(types::I64, kk * kk);
        let zero = cg.b.ins().f64const(0.0);
        cg.counted_loop(n, |cg, i| cg.store_at(c, i, zero));
        let k = out.vars[0];
        for g in list {
            let lg = linear_group(self.model, &out.vars, g).expect("grouped as linear");
            self.sum_loop(cg, k, &None, &mut |em, cg| {
                let row = cg.b.ins().imul_imm(em.vars[&k], kk);
                match lg.sum {
                    None => {
                        let at = cg.b.ins().iadd(row, em.vars[&k]);
                        em.add_coefficient(cg, c, at, &g.coef);
                    }
                    Some((a, range)) => em.sum_loop(cg, a, &range, &mut |em, cg| {
                        let at = cg.b.ins().iadd(row, em.vars[&a]);
                        em.add_coefficient(cg, c, at, &g.coef);
                    }),
                }
            });
        }
        let kv = cg.b.ins().iconst(types::I64, kk);
        let p = cg.b.ins().iconst(types::I64, power as i64);
        let y = cg.address(cg.y, self.state_offsets[source]);
        let dy = cg.address(cg.out, self.state_offsets[state]);
        cg.product("mode_matmul", &[kv, self.m, self.rho, p, y, c, dy]);
    }

    fn add_coefficient(&mut self, cg: &mut Codegen, c: Value, at: Value, coef: &L) {
        let v = self.expr(cg, coef);
        let old = cg.load_at(c, at, 0);
        let new = cg.b.ins().fadd(old, v);
        cg.store_at(c, at, new);
    }

    fn observable(&mut self, cg: &mut Codegen, out: &Output, q: cranelift_frontend::Variable) {
        let Val::Invariant(l) = &out.value else {
            unreachable!("observables are mode-independent")
        };
        self.loops(cg, &out.vars, &mut |em, cg| {
            let v = em.expr(cg, l);
            let at = cg.b.use_var(q);
            cg.store_at(cg.out, at, v);
            let next = cg.b.ins().iadd_imm(at, 1);
            cg.b.def_var(q, next);
        });
    }
}
