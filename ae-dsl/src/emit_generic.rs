//! Rust emitter for K-generic kernels: one type per (equation file, activation) whose
//! right-hand side loops over a run-time K (see [`crate::generic`] for the lowering).

use crate::activation::ActivationKind;
use proc_macro2::{Ident, Literal, TokenStream};
use quote::{format_ident, quote};

use crate::emit::{float, kernel_impl, param_defaults};
use crate::generic::{gram_group, linear_group, lower, Group, Output, Plan, SumRange, TempDef, Value, L};
use crate::ir::{CmpOp, Ix, Model, VarId};

/// What to generate: the K-generic type of one (equation file, activation).
pub struct GenericSpec<'a> {
    pub model: &'a Model,
    /// Name of the generated type, e.g. `VanillaGenericErf`.
    pub type_name: &'a str,
    pub activation: ActivationKind,
    /// Expression for the equation source text.
    pub source: TokenStream,
}

/// The conventional type name: `VanillaGenericErf`.
pub fn generic_type_name(equations: &str, activation: ActivationKind) -> String {
    format!("{}Generic{}", crate::emit::camel(equations), activation.type_name())
}

fn lit(i: usize) -> Literal {
    Literal::usize_unsuffixed(i)
}

fn var(v: VarId) -> Ident {
    format_ident!("i{}", v)
}

fn ix(i: &Ix) -> TokenStream {
    match i {
        Ix::Var(v) => {
            let v = var(*v);
            quote!(#v)
        }
        Ix::Fixed(n) => {
            let n = lit(*n);
            quote!(#n)
        }
    }
}

struct Emitter<'a> {
    model: &'a Model,
    plan: &'a Plan,
    act: &'a TokenStream,
}

/// Row-major position of `args` in an array over K^args.len() entries.
fn flat(args: &[Ix]) -> TokenStream {
    let mut acc: Option<TokenStream> = None;
    for a in args {
        let a = ix(a);
        acc = Some(match acc {
            None => quote!(#a),
            Some(prev) => quote!((#prev) * kk + #a),
        });
    }
    acc.unwrap_or_else(|| quote!(0))
}

impl Emitter<'_> {
    fn off(&self, state: usize) -> Ident {
        format_ident!("off{}", state)
    }

    fn stride(&self, state: usize) -> Ident {
        format_ident!("e{}", state)
    }

    fn temp_off(&self, id: usize) -> Ident {
        format_ident!("o{}", id)
    }

    /// Position of a state entry within its block (at one mode, for mode states).
    fn entry(&self, state: usize, hidden: &[Ix]) -> TokenStream {
        let s = &self.model.states[state];
        match hidden {
            [] => quote!(0),
            [i] => ix(i),
            [i, j] if s.symmetric => {
                let (i, j) = (ix(i), ix(j));
                quote!(::ae_core::generic::sym_entry(kk, #i, #j))
            }
            [i, j] => {
                let (i, j) = (ix(i), ix(j));
                quote!(#i * kk + #j)
            }
            _ => unreachable!("at most two hidden-unit indices (checked by the resolver)"),
        }
    }

    fn state_index(&self, state: usize, hidden: &[Ix]) -> TokenStream {
        let off = self.off(state);
        let entry = self.entry(state, hidden);
        if self.model.states[state].mode {
            let e = self.stride(state);
            quote!(#off + tau * #e + #entry)
        } else {
            quote!(#off + #entry)
        }
    }

    fn expr(&self, l: &L) -> TokenStream {
        match l {
            L::Num(v) => float(*v),
            L::Param(i) => {
                let i = lit(*i);
                quote!(p[#i])
            }
            L::Rho => quote!(rho_t),
            L::Y { state, hidden } | L::ModeY { state, hidden } => {
                let i = self.state_index(*state, hidden);
                quote!(y[#i])
            }
            L::Temp { id, args } => {
                let o = self.temp_off(*id);
                let f = flat(args);
                quote!(s[#o + #f])
            }
            L::Func(f, a) => crate::emit::func_call(*f, self.expr(a)),
            L::Neg(a) => {
                let a = self.expr(a);
                quote!((-(#a)))
            }
            L::Add(a, b) | L::Sub(a, b) | L::Mul(a, b) | L::Div(a, b) => {
                let (a, b) = (self.expr(a), self.expr(b));
                match l {
                    L::Add(..) => quote!((#a + #b)),
                    L::Sub(..) => quote!((#a - #b)),
                    L::Mul(..) => quote!((#a * #b)),
                    _ => quote!((#a / #b)),
                }
            }
            L::Powi(a, n) => {
                let a = self.expr(a);
                quote!((#a).powi(#n))
            }
            L::Avg(avg, args) => {
                let act = self.act;
                let method = format_ident!("{}", avg.method());
                let args = args.iter().map(|a| self.expr(a));
                quote!(<#act as ::ae_core::averages::Averages>::#method(#(#args),*))
            }
            L::Sum { var: v, range, body } => {
                let body = self.expr(body);
                self.sum_loop(*v, range, quote!(acc += #body;), true)
            }
        }
    }

    /// `for` over a hidden-unit range with `inner` as body; with `value`, a block that
    /// returns the accumulated `acc`.
    fn sum_loop(&self, v: VarId, range: &SumRange, inner: TokenStream, value: bool) -> TokenStream {
        let i = var(v);
        let (lo, hi, skip) = match range {
            None => (quote!(0), quote!(kk), None),
            Some((op, other)) => {
                let x = ix(other);
                match op {
                    CmpOp::Ne => (quote!(0), quote!(kk), Some(x)),
                    CmpOp::Le => (quote!(0), quote!((#x + 1)), None),
                    CmpOp::Lt => (quote!(0), quote!(#x), None),
                    CmpOp::Ge => (quote!(#x), quote!(kk), None),
                    CmpOp::Gt => (quote!((#x + 1)), quote!(kk), None),
                }
            }
        };
        let skip = skip.map(|x| quote!(if #i == #x { continue; }));
        if value {
            quote!({
                let mut acc = 0.0f64;
                for #i in #lo..#hi {
                    #skip
                    #inner
                }
                acc
            })
        } else {
            quote! {
                for #i in #lo..#hi {
                    #skip
                    #inner
                }
            }
        }
    }

    /// `acc += coef * factors` inside the group's sums.
    fn group_accumulate(&self, g: &Group) -> TokenStream {
        let coef = self.expr(&g.coef);
        let factors = g.factors.iter().map(|f| self.expr(f));
        let mut body = quote!(acc += #coef #(* #factors)*;);
        for (v, r) in g.sums.iter().rev() {
            body = self.sum_loop(*v, r, body, false);
        }
        body
    }

    /// Loops over all values of `vars` (0..K each) around `inner`.
    fn loops(&self, vars: &[VarId], inner: TokenStream) -> TokenStream {
        let mut body = inner;
        for v in vars.iter().rev() {
            let i = var(*v);
            body = quote!(for #i in 0..kk { #body });
        }
        body
    }

    fn temp(&self, id: usize) -> TokenStream {
        let t = &self.plan.temps[id];
        let o = self.temp_off(id);
        let args: Vec<Ix> = t.vars.iter().map(|v| Ix::Var(*v)).collect();
        let at = flat(&args);
        match &t.def {
            TempDef::Expr(l) => {
                let value = self.expr(l);
                self.loops(&t.vars, quote!(s[#o + #at] = #value;))
            }
            TempDef::ModeSum(groups) => {
                let mut out = TokenStream::new();
                let mut rest = Vec::new();
                for g in groups {
                    match gram_group(self.model, &t.vars, g) {
                        Some(gg) => {
                            let (lo, ro) = (self.off(gg.left), self.off(gg.right));
                            let power = lit(gg.power);
                            let coef = self.expr(&g.coef);
                            let update = self.loops(&t.vars, quote!(s[#o + #at] += #coef * gram[#at];));
                            out.extend(quote! {{
                                let gram = ::ae_core::generic::gram(kk, m, rho, #power, &y[#lo..#lo + m * kk], &y[#ro..#ro + m * kk]);
                                #update
                            }});
                        }
                        None => rest.push(g),
                    }
                }
                if !rest.is_empty() {
                    let adds = rest.iter().map(|g| self.group_accumulate(g));
                    let each = self.loops(
                        &t.vars,
                        quote! {
                            let mut acc = 0.0f64;
                            #(#adds)*
                            s[#o + #at] += acc;
                        },
                    );
                    out.extend(quote! {
                        for tau in 0..m {
                            let rho_t = rho[tau];
                            #each
                        }
                    });
                }
                out
            }
        }
    }

    /// Loops over the stored entries of a state (symmetric ones once for k <= l).
    fn entry_loops(&self, state: usize, vars: &[VarId], inner: TokenStream) -> TokenStream {
        match vars {
            [k, l] if self.model.states[state].symmetric => {
                let (k, l) = (var(*k), var(*l));
                quote!(for #k in 0..kk { for #l in #k..kk { #inner } })
            }
            _ => self.loops(vars, inner),
        }
    }

    fn state_output(&self, state: usize, out: &Output) -> TokenStream {
        let args: Vec<Ix> = out.vars.iter().map(|v| Ix::Var(*v)).collect();
        let at = self.state_index(state, &args);
        match &out.value {
            Value::Invariant(l) => {
                let value = self.expr(l);
                self.entry_loops(state, &out.vars, quote!(dy[#at] = #value;))
            }
            Value::PerMode(groups) => {
                let off = self.off(state);
                let e = self.stride(state);
                // Groups linear in one K-vector of mode states: one coefficient matrix per
                // (source state, power of rho), applied to all modes at once.
                let mut buckets: Vec<((usize, usize), Vec<TokenStream>)> = Vec::new();
                let mut rest = Vec::new();
                for g in groups {
                    match linear_group(self.model, &out.vars, g) {
                        Some(lg) => {
                            let coef = self.expr(&g.coef);
                            let k = var(out.vars[0]);
                            let fill = match lg.sum {
                                None => quote!(c[#k * kk + #k] += #coef;),
                                Some((a, range)) => {
                                    let ai = var(a);
                                    self.sum_loop(a, &range, quote!(c[#k * kk + #ai] += #coef;), false)
                                }
                            };
                            let fill = quote!(for #k in 0..kk { #fill });
                            match buckets.iter_mut().find(|(key, _)| *key == (lg.source, lg.power)) {
                                Some((_, fills)) => fills.push(fill),
                                None => buckets.push(((lg.source, lg.power), vec![fill])),
                            }
                        }
                        None => rest.push(g),
                    }
                }
                let mut code = if rest.is_empty() {
                    quote!(dy[#off..#off + m * #e].fill(0.0);)
                } else {
                    let adds = rest.iter().map(|g| self.group_accumulate(g));
                    let each = self.entry_loops(
                        state,
                        &out.vars,
                        quote! {
                            let mut acc = 0.0f64;
                            #(#adds)*
                            dy[#at] = acc;
                        },
                    );
                    quote! {
                        for tau in 0..m {
                            let rho_t = rho[tau];
                            #each
                        }
                    }
                };
                for ((source, power), fills) in buckets {
                    let so = self.off(source);
                    let power = lit(power);
                    code.extend(quote! {{
                        let mut c = ::std::vec![0.0f64; kk * kk];
                        #(#fills)*
                        ::ae_core::generic::mode_matmul(kk, m, rho, #power, &y[#so..#so + m * kk], &c, &mut dy[#off..#off + m * kk]);
                    }});
                }
                code
            }
        }
    }

    fn observable_output(&self, out: &Output) -> TokenStream {
        let Value::Invariant(l) = &out.value else {
            unreachable!("observables are mode-independent")
        };
        let value = self.expr(l);
        self.loops(&out.vars, quote!(dy[q] = #value; q += 1;))
    }

    /// Layout and temps needed by `outputs`, then `body`.
    fn function(&self, outputs: &[&Output], body: TokenStream) -> TokenStream {
        let mut needed = vec![false; self.plan.temps.len()];
        let mut stack: Vec<usize> = Vec::new();
        let refs = |l: &L, stack: &mut Vec<usize>| {
            visit_temps(l, &mut |id| stack.push(id));
        };
        for o in outputs {
            match &o.value {
                Value::Invariant(l) => refs(l, &mut stack),
                Value::PerMode(groups) => groups.iter().for_each(|g| group_refs(g, &mut |id| stack.push(id))),
            }
        }
        while let Some(id) = stack.pop() {
            if needed[id] {
                continue;
            }
            needed[id] = true;
            match &self.plan.temps[id].def {
                TempDef::Expr(l) => visit_temps(l, &mut |t| stack.push(t)),
                TempDef::ModeSum(groups) => groups.iter().for_each(|g| group_refs(g, &mut |t| stack.push(t))),
            }
        }
        let mut layout = TokenStream::new();
        let (mut scalar, mut per_mode) = (quote!(0usize), quote!(0usize));
        for (i, s) in self.model.states.iter().enumerate() {
            let e = self.stride(i);
            let off = self.off(i);
            let entries = match (s.hidden, s.symmetric) {
                (0, _) => quote!(1usize),
                (1, _) => quote!(kk),
                (_, true) => quote!(kk * (kk + 1) / 2),
                _ => quote!(kk * kk),
            };
            layout.extend(quote!(let #e: usize = #entries;));
            if !s.mode {
                layout.extend(quote!(let #off: usize = #scalar;));
                scalar = quote!(#off + #e);
            }
        }
        layout.extend(quote!(let n_scalar: usize = #scalar;));
        for (i, s) in self.model.states.iter().enumerate() {
            if s.mode {
                let (e, off) = (self.stride(i), self.off(i));
                layout.extend(quote!(let #off: usize = n_scalar + (#per_mode) * m;));
                per_mode = quote!(#per_mode + #e);
            }
        }
        let mut temps = TokenStream::new();
        let mut end = quote!(0usize);
        let mut compute = TokenStream::new();
        for (id, t) in self.plan.temps.iter().enumerate() {
            if !needed[id] {
                continue;
            }
            let o = self.temp_off(id);
            let size = match t.vars.len() {
                0 => quote!(1usize),
                n => {
                    let n = n as u32;
                    quote!(kk.pow(#n))
                }
            };
            temps.extend(quote!(let #o: usize = #end;));
            end = quote!(#o + #size);
            compute.extend(self.temp(id));
        }
        quote! {
            let kk = self.k;
            let p: &[f64] = &self.params;
            let rho: &[f64] = &self.rho;
            let m = rho.len();
            #layout
            #temps
            let mut s = ::std::vec![0.0f64; #end];
            #compute
            #body
        }
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

fn group_refs(g: &Group, f: &mut dyn FnMut(usize)) {
    visit_temps(&g.coef, f);
    g.factors.iter().for_each(|x| visit_temps(x, f));
}

/// The K-generic type for one (equation file, activation).
pub fn emit_generic(spec: &GenericSpec) -> TokenStream {
    let model = spec.model;
    let plan = lower(model);
    let act = crate::emit::averages_path(spec.activation);
    let em = Emitter {
        model,
        plan: &plan,
        act: &act,
    };
    let name = format_ident!("{}", spec.type_name);
    let source = &spec.source;
    let equations = &model.name;
    let activation = spec.activation.name();
    let activation_value = crate::emit::activation_value(spec.activation);
    let defaults = param_defaults(model);
    let rhs_outputs: Vec<&Output> = plan.rhs.iter().collect();
    let rhs_body = {
        let stores = plan.rhs.iter().enumerate().map(|(i, o)| em.state_output(i, o));
        em.function(&rhs_outputs, quote!(#(#stores)*))
    };
    let obs_outputs: Vec<&Output> = plan.observables.iter().collect();
    let observe_body = {
        let stores = plan.observables.iter().map(|o| em.observable_output(o));
        em.function(&obs_outputs, quote!(let mut q = 0usize; #(#stores)*))
    };
    let kernel_impl = kernel_impl(&name, equations, source, quote!(self.k), quote!());
    let doc = format!(
        "Right-hand side of `{equations}` ({}) for any K, activation `{activation}`: loops over a run-time K, generated by ae-macros.",
        model.path
    );
    quote! {
        #[doc = #doc]
        #[derive(Clone, Debug)]
        pub struct #name {
            k: usize,
            params: ::std::vec::Vec<f64>,
            rho: ::std::vec::Vec<f64>,
        }

        impl #name {
            pub const EQUATIONS: &'static str = #equations;
            pub const ACTIVATION: ::ae_core::averages::ActivationKind = #activation_value;
            pub const SOURCE: &'static str = #source;

            pub fn new(k: usize) -> Self {
                #name { k, params: ::std::vec![#(#defaults),*], rho: ::std::vec::Vec::new() }
            }

            #[allow(unused_variables, unused_mut, unused_parens, clippy::all)]
            pub fn rhs(&self, y: &[f64], dy: &mut [f64]) {
                #rhs_body
            }

            #[allow(unused_variables, unused_mut, unused_parens, clippy::all)]
            pub fn observe(&self, y: &[f64], out: &mut [f64]) {
                let dy = out;
                #observe_body
            }
        }

        #kernel_impl
    }
}
