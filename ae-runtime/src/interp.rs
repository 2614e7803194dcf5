//! Tree-walking interpreter of the typed IR: any K without code generation, and the oracle
//! that generated code is tested against.

use ae_core::averages::Evaluate as _;
use std::sync::Arc;

use ae_dsl::ir::{Expr, Input, Ix, Model, Range};
use ae_dsl::layout::{tuples, Layout};
use ae_dsl::unroll::in_range;

use ae_core::activation::Activation;
use ae_core::kernel::Kernel;

/// Order parameters of the initial weights, the inputs of `init` expressions.
#[derive(Debug, Clone, PartialEq)]
pub struct InitInputs {
    pub k: usize,
    pub m: usize,
    /// omega0[k][tau] = w_k . e_tau
    pub omega0: Vec<Vec<f64>>,
    /// varpi0[k][tau] = v_k . e_tau / sqrt(D)
    pub varpi0: Vec<Vec<f64>>,
    pub qb0: Vec<Vec<f64>>,
    pub rb0: Vec<Vec<f64>>,
    pub tb0: Vec<Vec<f64>>,
    pub t00: Vec<Vec<f64>>,
}

#[derive(Debug, Clone)]
pub struct Interpreter {
    model: Arc<Model>,
    source: String,
    k: usize,
    activation: Activation,
    params: Vec<f64>,
    rho: Vec<f64>,
}

/// Every stored entry of every state: (state, hidden indices, mode), in layout order of states.
fn state_entries(model: &Model, k: usize, m: usize) -> Vec<(usize, Vec<usize>, Option<usize>)> {
    let mut out = Vec::new();
    for (id, s) in model.states.iter().enumerate() {
        let modes: Vec<Option<usize>> = if s.mode { (0..m).map(Some).collect() } else { vec![None] };
        for tau in modes {
            for t in tuples(k, s.hidden, s.symmetric) {
                out.push((id, t, tau));
            }
        }
    }
    out
}

impl Interpreter {
    pub fn new(model: Arc<Model>, source: &str, k: usize, activation: impl Into<Activation>) -> Self {
        let activation = activation.into();
        let params = model.params.iter().map(|p| p.default.unwrap_or(f64::NAN)).collect();
        Interpreter {
            model,
            source: source.to_string(),
            k,
            activation,
            params,
            rho: vec![],
        }
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    fn evaluator<'a>(&'a self, y: &'a [f64], inputs: Option<&'a InitInputs>) -> Eval<'a> {
        let m = inputs.map(|i| i.m).unwrap_or(self.rho.len());
        Eval {
            model: &self.model,
            k: self.k,
            act: self.activation,
            params: &self.params,
            rho: &self.rho,
            y,
            layout: Layout::new(&self.model, self.k, m),
            env: vec![0; self.model.vars.len()],
            lets: self
                .model
                .lets
                .iter()
                .map(|l| vec![None; self.k.pow(l.hidden.len() as u32) * if l.mode.is_some() { m.max(1) } else { 1 }])
                .collect(),
            inputs,
            diagnose: false,
            culprit: None,
        }
    }

    /// The first operation of the right-hand side at `y` that turns finite inputs into a
    /// non-finite value, described with its indices and arguments (None if there is none).
    pub fn diagnose(&self, y: &[f64]) -> Option<String> {
        let mut ev = self.evaluator(y, None);
        ev.diagnose = true;
        for (id, t, tau) in state_entries(&self.model, self.k, self.rho.len()) {
            let s = &self.model.states[id];
            ev.bind(&s.lhs_hidden, s.lhs_mode, &t, tau);
            ev.eval(&s.rhs);
            if let Some(c) = ev.culprit.take() {
                return Some(c);
            }
        }
        None
    }

    /// The initial state from the order parameters of the initial weights.
    pub fn init(&self, inputs: &InitInputs) -> Vec<f64> {
        let ev = self.evaluator(&[], Some(inputs));
        let mut ev = ev;
        let mut y = vec![0.0; ev.layout.len];
        for (id, t, tau) in state_entries(&self.model, self.k, inputs.m) {
            let s = &self.model.states[id];
            ev.bind(&s.init_hidden, s.init_mode, &t, tau);
            y[ev.layout.index(id, &t, tau)] = ev.eval(&s.init);
        }
        y
    }
}

impl Kernel for Interpreter {
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
        self.rho = rho;
    }

    fn rhs(&self, y: &[f64], dy: &mut [f64]) {
        let mut ev = self.evaluator(y, None);
        for (id, t, tau) in state_entries(&self.model, self.k, self.rho.len()) {
            let s = &self.model.states[id];
            ev.bind(&s.lhs_hidden, s.lhs_mode, &t, tau);
            dy[ev.layout.index(id, &t, tau)] = ev.eval(&s.rhs);
        }
    }

    fn observe(&self, y: &[f64], out: &mut [f64]) {
        let mut ev = self.evaluator(y, None);
        let mut i = 0;
        for o in &self.model.observables {
            for t in tuples(self.k, o.hidden.len(), false) {
                for (v, val) in o.hidden.iter().zip(&t) {
                    ev.env[*v] = *val;
                }
                out[i] = ev.eval(&o.body);
                i += 1;
            }
        }
    }

    fn backend(&self) -> ae_core::kernel::Backend {
        ae_core::kernel::Backend::Interpreter
    }
}

struct Eval<'a> {
    model: &'a Model,
    k: usize,
    act: Activation,
    params: &'a [f64],
    rho: &'a [f64],
    y: &'a [f64],
    layout: Layout,
    env: Vec<usize>,
    /// Memoised values of each `let`, by flattened index (hidden indices, then mode).
    lets: Vec<Vec<Option<f64>>>,
    inputs: Option<&'a InitInputs>,
    /// When diagnosing: the first operation that made a non-finite value out of finite inputs.
    diagnose: bool,
    culprit: Option<String>,
}

impl Eval<'_> {
    /// Binds the variables of a left-hand side to an entry's indices.
    fn bind(&mut self, hidden: &[usize], mode: Option<usize>, values: &[usize], tau: Option<usize>) {
        for (v, val) in hidden.iter().zip(values) {
            self.env[*v] = *val;
        }
        if let (Some(v), Some(tau)) = (mode, tau) {
            self.env[v] = tau;
        }
    }

    /// Records `e` as the culprit if it made a non-finite value out of finite inputs.
    fn blame(&mut self, e: &Expr, value: f64, inputs: &[f64]) {
        if !self.diagnose || self.culprit.is_some() || value.is_finite() || inputs.iter().any(|x| !x.is_finite()) {
            return;
        }
        let env = &self.env;
        let text = self.model.expr_bound(e, &|v| env.get(v).copied());
        let args: Vec<String> = inputs.iter().map(|x| format!("{x:.6e}")).collect();
        let hint = match e {
            Expr::Avg(_, _) => {
                let c = inputs;
                let pd2 = |a: f64, b: f64, d: f64| a >= 0.0 && d >= 0.0 && b * b <= a * d * (1.0 + 1e-12);
                let ok = if c.len() == 3 {
                    pd2(c[0], c[1], c[2])
                } else {
                    pd2(c[0], c[1], c[3]) && pd2(c[0], c[2], c[5]) && pd2(c[3], c[4], c[5])
                };
                if ok {
                    ""
                } else {
                    ": these covariance entries are not positive semi-definite"
                }
            }
            Expr::Div(..) => ": division by zero",
            Expr::Func(..) => ": argument outside the function's domain",
            _ => ": overflow",
        };
        self.culprit = Some(format!("{text} = {value} with arguments ({}){hint}", args.join(", ")));
    }

    fn ix(&self, ix: &Ix) -> usize {
        match ix {
            Ix::Var(v) => self.env[*v],
            Ix::Fixed(n) => *n,
        }
    }

    fn eval(&mut self, e: &Expr) -> f64 {
        match e {
            Expr::Num(v) => *v,
            Expr::Param(i) => self.params[*i],
            Expr::Rho(ix) => self.rho[self.ix(ix)],
            Expr::State { id, hidden, mode } => {
                let h: Vec<usize> = hidden.iter().map(|i| self.ix(i)).collect();
                let tau = mode.as_ref().map(|i| self.ix(i));
                self.y[self.layout.index(*id, &h, tau)]
            }
            Expr::Let { id, hidden, mode } => {
                let mut flat = 0;
                for i in hidden {
                    flat = flat * self.k + self.ix(i);
                }
                if let Some(m) = mode {
                    flat += self.k.pow(hidden.len() as u32) * self.ix(m);
                }
                if let Some(v) = self.lets[*id][flat] {
                    return v;
                }
                let model = self.model;
                let l = &model.lets[*id];
                let values: Vec<usize> = hidden.iter().map(|i| self.ix(i)).collect();
                let tau = mode.as_ref().map(|i| self.ix(i));
                for (v, val) in l.hidden.iter().zip(values) {
                    self.env[*v] = val;
                }
                if let (Some(v), Some(tau)) = (l.mode, tau) {
                    self.env[v] = tau;
                }
                let v = self.eval(&l.body);
                self.lets[*id][flat] = Some(v);
                v
            }
            Expr::Input { input, hidden, mode } => {
                let inputs = self
                    .inputs
                    .expect("init inputs are given when init expressions are evaluated");
                let h: Vec<usize> = hidden.iter().map(|i| self.ix(i)).collect();
                match input {
                    Input::Omega0 => inputs.omega0[h[0]][self.ix(mode.as_ref().expect("mode index"))],
                    Input::Varpi0 => inputs.varpi0[h[0]][self.ix(mode.as_ref().expect("mode index"))],
                    Input::Qb0 => inputs.qb0[h[0]][h[1]],
                    Input::Rb0 => inputs.rb0[h[0]][h[1]],
                    Input::Tb0 => inputs.tb0[h[0]][h[1]],
                    Input::T00 => inputs.t00[h[0]][h[1]],
                }
            }
            Expr::Func(f, a) => {
                let x = self.eval(a);
                let v = f.apply(x);
                self.blame(e, v, &[x]);
                v
            }
            Expr::Neg(a) => -self.eval(a),
            Expr::Add(a, b) => self.eval(a) + self.eval(b),
            Expr::Sub(a, b) => self.eval(a) - self.eval(b),
            Expr::Mul(a, b) => {
                let (x, y) = (self.eval(a), self.eval(b));
                self.blame(e, x * y, &[x, y]);
                x * y
            }
            Expr::Div(a, b) => {
                let (x, y) = (self.eval(a), self.eval(b));
                self.blame(e, x / y, &[x, y]);
                x / y
            }
            Expr::Powi(a, n) => {
                let x = self.eval(a);
                self.blame(e, x.powi(*n), &[x]);
                x.powi(*n)
            }
            Expr::Avg(avg, args) => {
                let mut c = [0.0; 6];
                for (slot, a) in c.iter_mut().zip(args) {
                    *slot = self.eval(a);
                }
                let v = self.act.average(*avg, &c[..args.len()]);
                self.blame(e, v, &c[..args.len()]);
                v
            }
            Expr::Sum { var, range, body } => {
                let mut acc = 0.0;
                match range {
                    Range::Modes => {
                        for tau in 0..self.rho.len() {
                            self.env[*var] = tau;
                            acc += self.eval(body);
                        }
                    }
                    Range::Hidden(constraint) => {
                        let constraint = constraint.as_ref().map(|(op, ix)| (*op, self.ix(ix)));
                        for a in 0..self.k {
                            if let Some((op, other)) = constraint {
                                if !in_range(a, op, other) {
                                    continue;
                                }
                            }
                            self.env[*var] = a;
                            acc += self.eval(body);
                        }
                    }
                }
                acc
            }
        }
    }
}
