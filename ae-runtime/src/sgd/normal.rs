//! Fast exact standard normals for the SGD simulator: eight interleaved xoshiro256++ streams
//! (vectorisable) and a 256-layer ziggurat whose fast path runs over a whole batch.
//!
//! Drawing x is most of an SGD step at D = 1000 (one normal per coordinate). The generator
//! keeps eight independent xoshiro256++ states in lanes, so one call advances all eight with
//! the same integer operations (bit-identical with or without wide vectors; eight rather
//! than four so that two independent dependency chains keep the vector units busy). `fill_normal`
//! takes one 64-bit word per output for the ziggurat's fast path (98.5% of draws) and then
//! finishes the rejected positions in order with further words: the stream is a fixed
//! function of the seed, and every output is an exact N(0, 1) draw (Marsaglia & Tsang 2000,
//! in Doornik's 2005 form, which avoids the correlation of index and value bits).

use rand::RngCore;

/// Layers of the ziggurat and its constants for 256 layers: the start of the tail `R` and the
/// common area `V` of each layer (Marsaglia & Tsang).
#[doc(hidden)]
pub const LAYERS: usize = 256;
#[doc(hidden)]
pub const R: f64 = 3.654_152_885_361_009;
#[doc(hidden)]
pub const V: f64 = 4.928_673_233_99e-3;

#[doc(hidden)]
pub struct Tables {
    /// Per layer i, side by side (the vector fast path loads both with one 16-byte load): its
    /// right edge x_i (x_0 > x_1 = R > ... > x_255 > x_256 = 0, where x_0 = V / f(R) is the base
    /// layer's virtual width), and x_{i+1} / x_i, below which a draw in layer i is inside the
    /// density.
    pub pairs: [[f64; 2]; LAYERS],
    /// The density at each edge, f(x_i) (f(x_256) = 1), for the wedge test.
    f: [f64; LAYERS + 1],
}

#[doc(hidden)]
pub fn density(x: f64) -> f64 {
    (-0.5 * x * x).exp()
}

#[doc(hidden)]
pub fn tables() -> &'static Tables {
    static TABLES: std::sync::OnceLock<Tables> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        let mut x = [0.0; LAYERS + 1];
        x[0] = V / density(R);
        x[1] = R;
        for i in 2..LAYERS {
            x[i] = (-2.0 * (V / x[i - 1] + density(x[i - 1])).ln()).sqrt();
        }
        x[LAYERS] = 0.0;
        let pairs = std::array::from_fn(|i| [x[i], x[i + 1] / x[i]]);
        Tables {
            pairs,
            f: x.map(density),
        }
    })
}

/// Streams advanced together by one call.
pub const STREAMS: usize = 8;

/// Eight xoshiro256++ generators advanced together. Each lane is seeded from 32 bytes of the
/// seed, so the lanes are independent streams (not overlapping sub-sequences of one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xoshiro256PlusPlusX8 {
    /// State word w of lane l at s[w][l].
    s: [[u64; STREAMS]; 4],
    buffer: [u64; STREAMS],
    used: usize,
}

impl Xoshiro256PlusPlusX8 {
    /// From 256 bytes: 32 per lane. An all-zero lane (the one fixed point of xoshiro) is
    /// replaced by a fixed non-zero state.
    pub fn from_seed_bytes(seed: &[u8; 32 * STREAMS]) -> Self {
        let word = |lane: usize, w: usize| {
            let at = 32 * lane + 8 * w;
            u64::from_le_bytes(seed[at..at + 8].try_into().expect("8 bytes"))
        };
        let mut s: [[u64; STREAMS]; 4] = std::array::from_fn(|w| std::array::from_fn(|lane| word(lane, w)));
        for lane in 0..STREAMS {
            if s.iter().all(|w| w[lane] == 0) {
                s[0][lane] = 0x9e37_79b9_7f4a_7c15;
            }
        }
        Xoshiro256PlusPlusX8 {
            s,
            buffer: [0; STREAMS],
            used: STREAMS,
        }
    }

    /// The next word of every lane.
    #[inline(always)]
    #[doc(hidden)]
    pub fn next_group(&mut self) -> [u64; STREAMS] {
        let s = &mut self.s;
        let mut out = [0u64; STREAMS];
        for l in 0..STREAMS {
            out[l] = (s[0][l].wrapping_add(s[3][l])).rotate_left(23).wrapping_add(s[0][l]);
            let t = s[1][l] << 17;
            s[2][l] ^= s[0][l];
            s[3][l] ^= s[1][l];
            s[1][l] ^= s[2][l];
            s[0][l] ^= s[3][l];
            s[2][l] ^= t;
            s[3][l] = s[3][l].rotate_left(45);
        }
        out
    }

    /// Fills `out` with words: the buffered words first, whole groups from the lanes, the
    /// buffer for the rest.
    pub fn fill_u64(&mut self, out: &mut [u64]) {
        let mut i = 0;
        while self.used < STREAMS && i < out.len() {
            out[i] = self.buffer[self.used];
            self.used += 1;
            i += 1;
        }
        let whole = i + (out.len() - i) / STREAMS * STREAMS;
        self.fill_groups(&mut out[i..whole]);
        for o in &mut out[whole..] {
            *o = self.next_u64();
        }
    }

    /// Fills `out` (a whole number of groups long) with `next_group` after `next_group`.
    #[doc(hidden)]
    pub fn fill_groups(&mut self, out: &mut [u64]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { self.fill_groups_avx2(out) };
        }
        for group in out.chunks_exact_mut(STREAMS) {
            group.copy_from_slice(&self.next_group());
        }
    }

    /// `next_group` with lanes 0-3 and 4-7 of each state word in two 256-bit registers: the
    /// same integer operations, so the same words.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn fill_groups_avx2(&mut self, out: &mut [u64]) {
        use std::arch::x86_64::*;
        macro_rules! rotl {
            ($x:expr, $left:literal) => {{
                let x = $x;
                _mm256_or_si256(
                    _mm256_slli_epi64::<$left>(x),
                    _mm256_srli_epi64::<{ 64 - $left }>(x),
                )
            }};
        }
        // SAFETY (all loads and stores below): each half of `s[w]` is four u64, and each half
        // of a group of `out` is four u64; unaligned accesses are allowed.
        let mut s = [[_mm256_setzero_si256(); 2]; 4];
        for (w, halves) in s.iter_mut().enumerate() {
            for (h, r) in halves.iter_mut().enumerate() {
                *r = unsafe { _mm256_loadu_si256(self.s[w][4 * h..].as_ptr().cast()) };
            }
        }
        for group in out.chunks_exact_mut(STREAMS) {
            for h in 0..2 {
                let [s0, s1, s2, s3] = [s[0][h], s[1][h], s[2][h], s[3][h]];
                let result = _mm256_add_epi64(rotl!(_mm256_add_epi64(s0, s3), 23), s0);
                unsafe { _mm256_storeu_si256(group[4 * h..].as_mut_ptr().cast(), result) };
                let t = _mm256_slli_epi64::<17>(s1);
                let s2 = _mm256_xor_si256(s2, s0);
                let s3 = _mm256_xor_si256(s3, s1);
                let s1 = _mm256_xor_si256(s1, s2);
                let s0 = _mm256_xor_si256(s0, s3);
                let s2 = _mm256_xor_si256(s2, t);
                let s3 = rotl!(s3, 45);
                [s[0][h], s[1][h], s[2][h], s[3][h]] = [s0, s1, s2, s3];
            }
        }
        for (w, halves) in s.iter().enumerate() {
            for (h, r) in halves.iter().enumerate() {
                unsafe { _mm256_storeu_si256(self.s[w][4 * h..].as_mut_ptr().cast(), *r) };
            }
        }
    }

    /// Fills `out` with independent standard normal draws. Blocks of 256: one word per
    /// position for the fast path, then the block's rejected positions in order, each
    /// finished with further words. Nothing is allocated.
    pub fn fill_normal(&mut self, out: &mut [f64]) {
        let mut words = [0u64; 256];
        let mut rejected = [0u8; 256];
        for block in out.chunks_mut(256) {
            let words = &mut words[..block.len()];
            self.fill_u64(words);
            let n_rejected = fast_path(words, block, &mut rejected);
            for &j in &rejected[..n_rejected] {
                block[j as usize] = self.finish_normal(words[j as usize]);
            }
        }
    }

    /// The ziggurat from a first word `w` on: the fast test, then the tail (layer 0) or the
    /// wedge test, drawing further words as needed.
    fn finish_normal(&mut self, mut w: u64) -> f64 {
        let t = tables();
        loop {
            let (i, u) = split(w);
            let [edge, ratio] = t.pairs[i];
            if u.abs() < ratio {
                return u * edge;
            }
            if i == 0 {
                // Beyond R: Marsaglia's tail method.
                loop {
                    let a = -open01(self.next_u64()).ln() / R;
                    let b = -open01(self.next_u64()).ln();
                    if 2.0 * b > a * a {
                        return if u < 0.0 { -(R + a) } else { R + a };
                    }
                }
            }
            // A height uniform between the layer's bottom f(x_i) and top f(x_{i+1}) that
            // falls under the density at x.
            let x = u * edge;
            if t.f[i + 1] + open01(self.next_u64()) * (t.f[i] - t.f[i + 1]) < density(x) {
                return x;
            }
            w = self.next_u64();
        }
    }
}

/// A uniform in (0, 1) from the top 53 bits of a word.
#[inline(always)]
fn open01(w: u64) -> f64 {
    ((w >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

/// The layer (low 8 bits) and a signed uniform in [-1, 1) on a grid of 2^-51 (top 52 bits)
/// of one word. The uniform is built from the bits of a double in [2, 4): no integer to float
/// conversion, which x86 has no vector instruction for below AVX-512.
#[inline(always)]
fn split(w: u64) -> (usize, f64) {
    let i = (w & 0xff) as usize;
    let u = f64::from_bits(0x4000_0000_0000_0000 | (w >> 12)) - 3.0;
    (i, u)
}

/// The ziggurat's fast path for every word: `out[j]` is the draw where it is accepted; the
/// positions that need `finish_normal` go to `rejected` in order, and their number is
/// returned.
#[doc(hidden)]
pub fn fast_path(words: &[u64], out: &mut [f64], rejected: &mut [u8; 256]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { fast_path_avx2(words, out, rejected) };
    }
    fast_path_portable(words, out, rejected, 0, 0)
}

/// From position `from` on, with `n_rejected` rejections before it.
#[inline(always)]
#[doc(hidden)]
pub fn fast_path_portable(
    words: &[u64],
    out: &mut [f64],
    rejected: &mut [u8; 256],
    from: usize,
    mut n_rejected: usize,
) -> usize {
    let t = tables();
    for j in from..out.len() {
        let (i, u) = split(words[j]);
        let [edge, ratio] = t.pairs[i];
        out[j] = u * edge;
        if u.abs() >= ratio {
            rejected[n_rejected] = j as u8;
            n_rejected += 1;
        }
    }
    n_rejected
}

/// Four words at a time: the layer by a mask, the uniform by the bits of `split`, the table
/// entries by gathers. Each operation is exact or one correctly rounded product, as in
/// `split` and `fast_path_portable`, so the draws are identical.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fast_path_avx2(words: &[u64], out: &mut [f64], rejected: &mut [u8; 256]) -> usize {
    use std::arch::x86_64::*;
    let t = tables();
    let n = words.len().min(out.len()).min(256);
    let exponent = _mm256_set1_epi64x(0x4000_0000_0000_0000);
    let three = _mm256_set1_pd(3.0);
    let abs_mask = _mm256_castsi256_pd(_mm256_set1_epi64x(i64::MAX));
    let mut n_rejected = 0;
    let whole = n / 4 * 4;
    for j in (0..whole).step_by(4) {
        // SAFETY: j + 4 <= n, within both slices; each layer index is below 256, the length
        // of `pairs`.
        let w = unsafe { _mm256_loadu_si256(words.as_ptr().add(j).cast()) };
        let u = _mm256_sub_pd(
            _mm256_castsi256_pd(_mm256_or_si256(_mm256_srli_epi64::<12>(w), exponent)),
            three,
        );
        // (x_i, ratio_i) of each lane by one 16-byte load, then transposed: cheaper than two
        // gathers on the machines measured.
        let pair = |l: usize| unsafe { _mm_loadu_pd(t.pairs[(words[j + l] & 0xff) as usize].as_ptr()) };
        let (p02, p13) = (
            _mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(pair(0)), pair(2)),
            _mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(pair(1)), pair(3)),
        );
        // p02 = (x0, r0, x2, r2) and p13 = (x1, r1, x3, r3): unpacking within each half gives
        // (x0, x1, x2, x3) and (r0, r1, r2, r3).
        let x = _mm256_unpacklo_pd(p02, p13);
        let ratio = _mm256_unpackhi_pd(p02, p13);
        unsafe { _mm256_storeu_pd(out.as_mut_ptr().add(j), _mm256_mul_pd(u, x)) };
        let outside = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_GE_OQ>(_mm256_and_pd(u, abs_mask), ratio));
        if outside != 0 {
            for l in 0..4 {
                if outside & (1 << l) != 0 {
                    rejected[n_rejected] = (j + l) as u8;
                    n_rejected += 1;
                }
            }
        }
    }
    fast_path_portable(words, &mut out[..n], rejected, whole, n_rejected)
}

impl RngCore for Xoshiro256PlusPlusX8 {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        if self.used == STREAMS {
            self.buffer = self.next_group();
            self.used = 0;
        }
        let w = self.buffer[self.used];
        self.used += 1;
        w
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let w = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
    }
}
