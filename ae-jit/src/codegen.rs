//! The building blocks both backends (unrolled and K-generic) emit with: the function's
//! arguments and context, loads and stores at run-time indices, counted loops, integer powers
//! as the Rust compiler expands them, and calls of the runtime's functions.

use std::collections::HashMap;

use ae_dsl::ir::{Avg, Func};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, FuncRef, InstBuilder, MemFlags, StackSlotData, StackSlotKind, Type, Value};
use cranelift_frontend::FunctionBuilder;
use cranelift_jit::JITModule;
use cranelift_module::{Linkage, Module};

use crate::symbols::{self, AverageSource, Import};

/// Offsets of the context's fields (see [`crate::kernel::Context`]).
pub(crate) const CTX_PARAMS: i32 = 0;
pub(crate) const CTX_RHO: i32 = 8;
pub(crate) const CTX_M: i32 = 16;
pub(crate) const CTX_ACTIVATION: i32 = 24;
pub(crate) const CTX_JAC_INVARIANT: i32 = 32;
pub(crate) const CTX_JAC_MODE: i32 = 40;
pub(crate) const CTX_SCRATCH: i32 = 48;

/// A function being built, with what every emitter needs at hand.
pub(crate) struct Codegen<'a, 'm> {
    pub b: FunctionBuilder<'a>,
    pub ctx: Value,
    pub y: Value,
    /// The derivative, the observables, or the Jacobian's hand-over target.
    pub out: Value,
    module: &'m mut JITModule,
    imports: HashMap<String, FuncRef>,
    averages: AverageSource,
}

impl<'a, 'm> Codegen<'a, 'm> {
    /// Starts the function in `b`: its entry block with the three pointer arguments.
    pub fn new(mut b: FunctionBuilder<'a>, module: &'m mut JITModule, averages: AverageSource) -> Self {
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        b.seal_block(entry);
        let (ctx, y, out) = {
            let p = b.block_params(entry);
            (p[0], p[1], p[2])
        };
        Codegen {
            b,
            ctx,
            y,
            out,
            module,
            imports: HashMap::new(),
            averages,
        }
    }

    /// Returns and finishes the function.
    pub fn finish(mut self) {
        self.b.ins().return_(&[]);
        self.b.seal_all_blocks();
        self.b.finalize();
    }

    pub fn load_ctx(&mut self, ty: Type, offset: i32) -> Value {
        self.b.ins().load(ty, MemFlags::trusted(), self.ctx, offset)
    }

    /// `base[index + offset]` for a number array and a run-time index.
    pub fn load_at(&mut self, base: Value, index: Value, offset: i32) -> Value {
        let bytes = self.b.ins().ishl_imm(index, 3);
        let at = self.b.ins().iadd(base, bytes);
        self.b.ins().load(types::F64, MemFlags::trusted(), at, 8 * offset)
    }

    /// `base[index] = v`.
    pub fn store_at(&mut self, base: Value, index: Value, v: Value) {
        let bytes = self.b.ins().ishl_imm(index, 3);
        let at = self.b.ins().iadd(base, bytes);
        self.b.ins().store(MemFlags::trusted(), v, at, 0);
    }

    /// The address of `base[index]`.
    pub fn address(&mut self, base: Value, index: Value) -> Value {
        let bytes = self.b.ins().ishl_imm(index, 3);
        self.b.ins().iadd(base, bytes)
    }

    /// `for i in 0..n { body(i) }`.
    pub fn counted_loop(&mut self, n: Value, body: impl FnOnce(&mut Self, Value)) {
        let zero = self.b.ins().iconst(types::I64, 0);
        self.range_loop(zero, n, None, body);
    }

    /// `for i in start..end { if Some(i) == skip { continue } body(i) }`.
    pub fn range_loop(&mut self, start: Value, end: Value, skip: Option<Value>, body: impl FnOnce(&mut Self, Value)) {
        let counter = self.b.declare_var(types::I64);
        self.b.def_var(counter, start);
        let (header, work, latch, exit) = (
            self.b.create_block(),
            self.b.create_block(),
            self.b.create_block(),
            self.b.create_block(),
        );
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(header);
        let i = self.b.use_var(counter);
        let more = self.b.ins().icmp(IntCC::UnsignedLessThan, i, end);
        match skip {
            None => {
                self.b.ins().brif(more, work, &[], exit, &[]);
            }
            Some(skip) => {
                let check = self.b.create_block();
                self.b.ins().brif(more, check, &[], exit, &[]);
                self.b.switch_to_block(check);
                self.b.seal_block(check);
                let same = self.b.ins().icmp(IntCC::Equal, i, skip);
                self.b.ins().brif(same, latch, &[], work, &[]);
            }
        }
        self.b.switch_to_block(work);
        self.b.seal_block(work);
        body(self, i);
        self.b.ins().jump(latch, &[]);
        self.b.switch_to_block(latch);
        self.b.seal_block(latch);
        let next = self.b.ins().iadd_imm(i, 1);
        self.b.def_var(counter, next);
        self.b.ins().jump(header, &[]);
        self.b.seal_block(header);
        self.b.switch_to_block(exit);
        self.b.seal_block(exit);
    }

    /// `a^n` as `powi` is expanded (square and multiply, lowest bit first; a reciprocal for
    /// n < 0), so that the code rounds as the generated Rust does.
    pub fn powi(&mut self, a: Value, n: i32) -> Value {
        if n == 0 {
            return self.b.ins().f64const(1.0);
        }
        let mut bits = n.unsigned_abs();
        let mut square = a;
        let mut result: Option<Value> = None;
        loop {
            if bits & 1 == 1 {
                result = Some(match result {
                    None => square,
                    Some(r) => self.b.ins().fmul(r, square),
                });
            }
            bits >>= 1;
            if bits == 0 {
                break;
            }
            square = self.b.ins().fmul(square, square);
        }
        let r = result.expect("n != 0 has a set bit");
        if n < 0 {
            let one = self.b.ins().f64const(1.0);
            self.b.ins().fdiv(one, r)
        } else {
            r
        }
    }

    /// A function of the language: `sqrt` and `abs` are instructions, the others calls.
    pub fn func(&mut self, f: Func, a: Value) -> Value {
        match f {
            Func::Sqrt => self.b.ins().sqrt(a),
            Func::Abs => self.b.ins().fabs(a),
            _ => {
                let import = symbols::func_import(f, self.call_conv());
                self.call(import, &[a])[0]
            }
        }
    }

    /// A Gaussian average of the kernel's activation.
    pub fn average(&mut self, avg: Avg, args: &[Value]) -> Value {
        let import = symbols::average_import(self.averages, avg, false, self.call_conv());
        let mut all = self.activation_arg();
        all.extend_from_slice(args);
        self.call(import, &all)[0]
    }

    /// The gradient of an average with respect to its arguments, one value per argument.
    pub fn average_gradient(&mut self, avg: Avg, args: &[Value]) -> Vec<Value> {
        let import = symbols::average_import(self.averages, avg, true, self.call_conv());
        let slot = self.b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            8 * args.len() as u32,
            3,
        ));
        let out = self.b.ins().stack_addr(types::I64, slot, 0);
        let mut all = self.activation_arg();
        all.extend_from_slice(args);
        all.push(out);
        self.call(import, &all);
        (0..args.len())
            .map(|j| self.b.ins().stack_load(types::F64, slot, (8 * j) as i32))
            .collect()
    }

    /// Hands the Jacobian entries in `buffer` to table `table`'s slots at mode `tau`.
    pub fn jac_put(&mut self, table: Value, buffer: Value, tau: Value) {
        let import = symbols::jac_put_import(self.call_conv());
        let target = self.out;
        self.call(import, &[target, table, buffer, tau]);
    }

    /// Calls the runtime's matrix product `name` (`gram` or `mode_matmul`).
    pub fn product(&mut self, name: &str, args: &[Value]) {
        let import = symbols::product_import(name, self.call_conv());
        self.call(import, args);
    }

    fn activation_arg(&mut self) -> Vec<Value> {
        match self.averages {
            AverageSource::User => vec![self.load_ctx(types::I64, CTX_ACTIVATION)],
            AverageSource::Builtin(_) => vec![],
        }
    }

    fn call_conv(&self) -> cranelift_codegen::isa::CallConv {
        self.module.isa().default_call_conv()
    }

    fn call(&mut self, import: Import, args: &[Value]) -> Vec<Value> {
        let func = match self.imports.get(&import.name) {
            Some(f) => *f,
            None => {
                let id = self
                    .module
                    .declare_function(&import.name, Linkage::Import, &import.signature)
                    .expect("every runtime function is declared with one signature");
                let f = self.module.declare_func_in_func(id, self.b.func);
                self.imports.insert(import.name, f);
                f
            }
        };
        let call = self.b.ins().call(func, args);
        self.b.inst_results(call).to_vec()
    }
}
