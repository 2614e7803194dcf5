//! The fused pass of networks up to `GRAM_MAX_K` wide: each block of four columns is updated
//! by the pending step and summed against the new sample while it is in registers.
//!
//! The tile-by-tile pass of `super::pass` streams every row through the first-level cache
//! several times a step (the residual, each row's update, each row's sums). Here the width K,
//! the tie and the rule are constants, so each row's partial sums live in registers across
//! the whole row and each weight is loaded and stored once. (Weight decay and the pending
//! update are not: a product by a decay factor of exactly 1 and an update of zeros change no
//! bits, and each further constant would double the 64 compiled kernels.)
//!
//! Products are fused multiply-adds (`f64::mul_add`): one rounding each, the same bits with or
//! without the FMA instructions (where the CPU lacks them, the portable path calls the
//! correctly rounded software fma, slowly but exactly).

/// Columns per block: one AVX2 register of f64.
const WIDTH: usize = 4;

/// The widest network the fused pass takes (`super::GRAM_MAX_K`).
pub const MAX_K: usize = 8;

/// The rows, the sample summed against and the layout. `v` is empty when the weights are tied.
pub struct Rows<'a> {
    pub w: &'a mut [f64],
    pub v: &'a mut [f64],
    pub x: &'a [f64],
    pub k: usize,
    pub truncated: bool,
}

/// The step whose update is pending: row j of the decoder gains `decoder[j]` times its
/// residual against `x_prev` (the residual subtracts `g[i]` times decoder row i over all rows,
/// or rows i <= j when truncated), row j of the encoder `encoder[j]` times `x_prev`, then every
/// weight is multiplied by `shrink`.
pub struct Pending<'a> {
    pub x_prev: &'a [f64],
    pub g: &'a [f64],
    pub decoder: &'a [f64],
    pub encoder: &'a [f64],
    pub shrink: f64,
}

/// What the pass returns: w_j . x, v_j . x (untied) and x . x after the update.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sums {
    pub lambda: [f64; MAX_K],
    pub decoder_x: [f64; MAX_K],
    pub xx: f64,
}

/// Applies `pending` (if any) to the rows, then sums them against `rows.x`.
pub(super) fn pass(rows: Rows, pending: Option<&Pending>) -> Sums {
    pass_with(rows, pending, false)
}

/// `pass`, or (`portable`) the same without the vector instructions whatever the CPU has.
pub fn pass_with(rows: Rows, pending: Option<&Pending>, portable: bool) -> Sums {
    assert!((1..=MAX_K).contains(&rows.k), "the fused pass takes 1 to {MAX_K} rows");
    let flags = Flags {
        tied: rows.v.is_empty(),
        truncated: rows.truncated,
        portable,
    };
    macro_rules! widths {
        ($($k:literal)*) => {
            match rows.k {
                $($k => tied::<$k>(flags, rows, pending),)*
                _ => unreachable!("checked above"),
            }
        };
    }
    widths!(1 2 3 4 5 6 7 8)
}

#[derive(Clone, Copy)]
struct Flags {
    tied: bool,
    truncated: bool,
    portable: bool,
}

// One function per flag, each choosing the next flag's constant.
fn tied<const K: usize>(f: Flags, rows: Rows, p: Option<&Pending>) -> Sums {
    if f.tied {
        truncated::<K, true>(f, rows, p)
    } else {
        truncated::<K, false>(f, rows, p)
    }
}

fn truncated<const K: usize, const TIED: bool>(f: Flags, rows: Rows, p: Option<&Pending>) -> Sums {
    if f.truncated {
        dispatch::<K, TIED, true>(f, rows, p)
    } else {
        dispatch::<K, TIED, false>(f, rows, p)
    }
}

/// The vector instructions where the CPU has them: the same operations, the same bits.
fn dispatch<const K: usize, const TIED: bool, const TRUNCATED: bool>(
    f: Flags,
    rows: Rows,
    p: Option<&Pending>,
) -> Sums {
    #[cfg(target_arch = "x86_64")]
    if !f.portable && std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        return unsafe { fused_avx2::<K, TIED, TRUNCATED>(rows, p) };
    }
    fused::<[f64; WIDTH], K, TIED, TRUNCATED>(rows, p)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fused_avx2<const K: usize, const TIED: bool, const TRUNCATED: bool>(rows: Rows, p: Option<&Pending>) -> Sums {
    fused::<avx::Avx, K, TIED, TRUNCATED>(rows, p)
}

/// `WIDTH` (or one) numbers operated on together: one register where the CPU has vectors.
/// Every operation is exact or correctly rounded per lane, so every implementation gives the
/// same bits.
trait Lanes: Copy {
    const N: usize;
    fn splat(x: f64) -> Self;
    /// The `N` numbers from `from` on.
    ///
    /// # Safety
    /// `from` points to `N` readable numbers.
    unsafe fn load(from: *const f64) -> Self;
    /// # Safety
    /// `to` points to `N` writable numbers.
    unsafe fn store(self, to: *mut f64);
    /// self * b + c, rounded once.
    fn mul_add(self, b: Self, c: Self) -> Self;
    fn mul(self, b: Self) -> Self;
    /// The lanes, then zeros.
    fn to_array(self) -> [f64; WIDTH];
}

impl Lanes for f64 {
    const N: usize = 1;
    #[inline(always)]
    fn splat(x: f64) -> Self {
        x
    }
    #[inline(always)]
    unsafe fn load(from: *const f64) -> Self {
        // SAFETY: the caller's promise.
        unsafe { from.read() }
    }
    #[inline(always)]
    unsafe fn store(self, to: *mut f64) {
        // SAFETY: the caller's promise.
        unsafe { to.write(self) }
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        f64::mul_add(self, b, c)
    }
    #[inline(always)]
    fn mul(self, b: Self) -> Self {
        self * b
    }
    #[inline(always)]
    fn to_array(self) -> [f64; WIDTH] {
        [self, 0.0, 0.0, 0.0]
    }
}

impl Lanes for [f64; WIDTH] {
    const N: usize = WIDTH;
    #[inline(always)]
    fn splat(x: f64) -> Self {
        [x; WIDTH]
    }
    #[inline(always)]
    unsafe fn load(from: *const f64) -> Self {
        // SAFETY: the caller's promise.
        unsafe { from.cast::<Self>().read_unaligned() }
    }
    #[inline(always)]
    unsafe fn store(self, to: *mut f64) {
        // SAFETY: the caller's promise.
        unsafe { to.cast::<Self>().write_unaligned(self) }
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        std::array::from_fn(|l| f64::mul_add(self[l], b[l], c[l]))
    }
    #[inline(always)]
    fn mul(self, b: Self) -> Self {
        std::array::from_fn(|l| self[l] * b[l])
    }
    #[inline(always)]
    fn to_array(self) -> [f64; WIDTH] {
        self
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    //! The four lanes in one AVX2 register. These functions are inlined into `fused_avx2`,
    //! which enables AVX2 and FMA; called anywhere else they would not be.
    use super::{Lanes, WIDTH};
    use std::arch::x86_64::*;

    #[derive(Clone, Copy)]
    pub(super) struct Avx(__m256d);

    impl Lanes for Avx {
        const N: usize = WIDTH;
        #[inline(always)]
        fn splat(x: f64) -> Self {
            // SAFETY (every intrinsic below): only reached from `fused_avx2`, on a CPU with
            // AVX2 and FMA; loads and stores have the caller's promise of WIDTH numbers.
            Avx(unsafe { _mm256_set1_pd(x) })
        }
        #[inline(always)]
        unsafe fn load(from: *const f64) -> Self {
            Avx(unsafe { _mm256_loadu_pd(from) })
        }
        #[inline(always)]
        unsafe fn store(self, to: *mut f64) {
            unsafe { _mm256_storeu_pd(to, self.0) }
        }
        #[inline(always)]
        fn mul_add(self, b: Self, c: Self) -> Self {
            Avx(unsafe { _mm256_fmadd_pd(self.0, b.0, c.0) })
        }
        #[inline(always)]
        fn mul(self, b: Self) -> Self {
            Avx(unsafe { _mm256_mul_pd(self.0, b.0) })
        }
        #[inline(always)]
        fn to_array(self) -> [f64; WIDTH] {
            let mut out = [0.0; WIDTH];
            unsafe { _mm256_storeu_pd(out.as_mut_ptr(), self.0) };
            out
        }
    }
}

/// The step's numbers, each in every lane (zeros and a factor of 1 where nothing is pending:
/// an update that changes no weight).
struct Coefficients<V, const K: usize> {
    neg_g: [V; K],
    decoder: [V; K],
    encoder: [V; K],
    shrink: V,
}

impl<V: Lanes, const K: usize> Coefficients<V, K> {
    fn new(p: Option<&Pending>) -> Self {
        let (g, decoder, encoder) = match p {
            Some(p) => (p.g, p.decoder, p.encoder),
            None => (&[0.0; K][..], &[0.0; K][..], &[0.0; K][..]),
        };
        Coefficients {
            neg_g: std::array::from_fn(|j| V::splat(-g[j])),
            decoder: std::array::from_fn(|j| V::splat(decoder[j])),
            encoder: std::array::from_fn(|j| V::splat(encoder[j])),
            shrink: V::splat(p.map_or(1.0, |p| p.shrink)),
        }
    }
}

/// Partial sums of each row, one per lane.
struct Partial<V, const K: usize> {
    lambda: [V; K],
    decoder_x: [V; K],
    xx: V,
}

#[inline(always)]
fn fused<V: Lanes, const K: usize, const TIED: bool, const TRUNCATED: bool>(rows: Rows, p: Option<&Pending>) -> Sums {
    let Rows { w, v, x, .. } = rows;
    let d = x.len();
    let x_prev = p.map_or(x, |p| p.x_prev);
    let whole = d / WIDTH * WIDTH;
    let main = columns::<V, K, TIED, TRUNCATED>(0..whole, w, v, x, x_prev, p);
    let tail = columns::<f64, K, TIED, TRUNCATED>(whole..d, w, v, x, x_prev, p);
    // The lanes in a fixed order, then the last columns.
    let fold = |a: V, t: f64| {
        let a = a.to_array();
        ((a[0] + a[1]) + (a[2] + a[3])) + t
    };
    let mut sums = Sums {
        xx: fold(main.xx, tail.xx),
        ..Sums::default()
    };
    for j in 0..K {
        sums.lambda[j] = fold(main.lambda[j], tail.lambda[j]);
        sums.decoder_x[j] = fold(main.decoder_x[j], tail.decoder_x[j]);
    }
    sums
}

/// The columns `range` (a whole number of `V::N`), `V::N` at a time: the pending update of
/// each block (residual, then each row), and each row's sums against `x`. Each block's numbers
/// are loaded once, through row pointers: a pass at D = 1000 and K = 3 has 250 blocks of
/// about 16 fused multiply-adds, which slice indexing (two bounds checks per load) and
/// reloading would double.
#[inline(always)]
fn columns<V: Lanes, const K: usize, const TIED: bool, const TRUNCATED: bool>(
    range: std::ops::Range<usize>,
    w: &mut [f64],
    v: &mut [f64],
    x: &[f64],
    x_prev: &[f64],
    p: Option<&Pending>,
) -> Partial<V, K> {
    let d = x.len();
    assert!(
        w.len() >= K * d && (TIED || v.len() >= K * d) && x_prev.len() == d && range.end <= d,
        "rows of the fused pass"
    );
    assert_eq!(range.len() % V::N, 0, "whole blocks");
    let step = Coefficients::<V, K>::new(p);
    let zero = V::splat(0.0);
    let mut lambda = [zero; K];
    let mut decoder_x = [zero; K];
    let mut xx = zero;
    let w_rows: [*mut f64; K] = std::array::from_fn(|j| w[j * d..].as_mut_ptr());
    let v_rows: [*mut f64; K] = if TIED {
        w_rows
    } else {
        std::array::from_fn(|j| v[j * d..].as_mut_ptr())
    };
    for c in range.step_by(V::N) {
        // SAFETY (every access below): c + V::N <= range.end <= d, and each row pointer has d
        // numbers after it (asserted above); the rows of w and of v do not overlap, and no
        // reference to them is used while the pointers are.
        let at = |row: *mut f64| unsafe { row.add(c) };
        let xn = unsafe { V::load(x.as_ptr().add(c)) };
        let xp = unsafe { V::load(x_prev.as_ptr().add(c)) };
        let mut wj: [V; K] = std::array::from_fn(|j| unsafe { V::load(at(w_rows[j])) });
        let mut vj: [V; K] = if TIED {
            wj
        } else {
            std::array::from_fn(|j| unsafe { V::load(at(v_rows[j])) })
        };
        // The residual x_prev - sum_i g_i decoder_i of the rows before the update: all of
        // them, or (truncated) those up to each row's own.
        let mut r = xp;
        if !TRUNCATED {
            for (neg_g, row) in step.neg_g.iter().zip(&vj) {
                r = neg_g.mul_add(*row, r);
            }
        }
        for j in 0..K {
            if TRUNCATED {
                r = step.neg_g[j].mul_add(vj[j], r);
            }
            if TIED {
                wj[j] = step.encoder[j].mul_add(xp, step.decoder[j].mul_add(r, wj[j]));
            } else {
                vj[j] = step.decoder[j].mul_add(r, vj[j]).mul(step.shrink);
                unsafe { vj[j].store(at(v_rows[j])) };
                wj[j] = step.encoder[j].mul_add(xp, wj[j]);
            }
            wj[j] = wj[j].mul(step.shrink);
            unsafe { wj[j].store(at(w_rows[j])) };
            lambda[j] = wj[j].mul_add(xn, lambda[j]);
            if !TIED {
                decoder_x[j] = vj[j].mul_add(xn, decoder_x[j]);
            }
        }
        xx = xn.mul_add(xn, xx);
    }
    Partial { lambda, decoder_x, xx }
}
