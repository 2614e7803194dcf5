//! The eight-lane normal generator: its lanes, its ziggurat tables, its moments and tails.

use ae_runtime::internals::{density, fast_path, fast_path_portable, tables, LAYERS, R, V};
use ae_runtime::sgd::normal::*;
use rand::RngCore as _;

fn generator(seed: u8) -> Xoshiro256PlusPlusX8 {
    let mut bytes = [0u8; 32 * STREAMS];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
    }
    Xoshiro256PlusPlusX8::from_seed_bytes(&bytes)
}

#[test]
fn one_lane_is_xoshiro256plusplus() {
    // Lane 0 against rand_xoshiro's reference implementation from the same 32 bytes.
    use rand::SeedableRng;
    let mut bytes = [0u8; 32 * STREAMS];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = i as u8 ^ 0x5a;
    }
    let mut x4 = Xoshiro256PlusPlusX8::from_seed_bytes(&bytes);
    let mut reference = rand_xoshiro::Xoshiro256PlusPlus::from_seed(bytes[..32].try_into().unwrap());
    for _ in 0..100 {
        let group = x4.next_group();
        assert_eq!(group[0], reference.next_u64());
    }
}

/// The vectorised generator and fast path (AVX2 where the CPU has it, as on the machines
/// this runs on) give the same words, draws and rejections as the portable code, also for
/// the extreme words (layer 0 and 255, uniforms at -1 and just below 1).
#[test]
fn the_vector_paths_equal_the_portable_paths() {
    let mut dispatched = generator(3);
    let mut portable = dispatched.clone();
    let mut words = vec![0u64; 1000];
    dispatched.fill_groups(&mut words);
    for group in words.chunks(STREAMS) {
        assert_eq!(group, portable.next_group());
    }
    words.extend([
        0,
        0xff,
        u64::MAX,
        u64::MAX << 8,
        0x8000_0000_0000_0000,
        0x7fff_ffff_ffff_ff00,
    ]);
    for block in words.chunks(256) {
        let (mut a, mut b) = (vec![0.0; block.len()], vec![0.0; block.len()]);
        let (mut ra, mut rb) = ([0u8; 256], [0u8; 256]);
        let na = fast_path(block, &mut a, &mut ra);
        let nb = fast_path_portable(block, &mut b, &mut rb, 0, 0);
        assert_eq!(ra[..na], rb[..nb]);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a), bits(&b));
    }
}

#[test]
fn the_ziggurat_tables_close() {
    // The recursion must land on the top layer: x_255 small and positive, and the top
    // layer's area (x_255 (1 - f(x_255))) equal to the common area V to 1e-9.
    let t = tables();
    let top = t.pairs[LAYERS - 1][0];
    assert!(top > 0.0 && top < 0.3, "{top}");
    assert!(
        (top * (1.0 - density(top)) - V).abs() < 1e-9,
        "{}",
        top * (1.0 - density(top))
    );
}

#[test]
fn the_stream_is_a_fixed_function_of_the_seed() {
    let draw = |seed: u8| {
        let mut g = generator(seed);
        let mut xs = vec![0.0; 1000];
        g.fill_normal(&mut xs);
        xs
    };
    assert_eq!(draw(1), draw(1));
    assert_ne!(draw(1), draw(2));
}

#[test]
fn moments_and_tails_are_normal() {
    // 4e6 draws in batches of 1000. Standard errors: mean 1/sqrt(n) = 5e-4, variance
    // sqrt(2/n) = 7e-4, fourth moment sqrt(96/n) = 4.9e-3; tail counts are binomial. Each
    // check allows 5 standard errors (a false alarm has probability ~6e-7).
    let mut g = generator(7);
    let n = 4_000_000usize;
    let mut batch = vec![0.0; 1000];
    let (mut m1, mut m2, mut m4) = (0.0, 0.0, 0.0);
    let thresholds = [1.0, 2.0, 3.0, R, 4.5];
    let mut beyond = [0usize; 5];
    let mut bins = [0usize; 40];
    for _ in 0..n / 1000 {
        g.fill_normal(&mut batch);
        for &z in &batch {
            m1 += z;
            m2 += z * z;
            m4 += z * z * z * z;
            for (c, t) in beyond.iter_mut().zip(thresholds) {
                if z.abs() > t {
                    *c += 1;
                }
            }
            let bin = ((z + 4.0) / 0.2).floor();
            if (0.0..40.0).contains(&bin) {
                bins[bin as usize] += 1;
            }
        }
    }
    let nf = n as f64;
    let (m1, m2, m4) = (m1 / nf, m2 / nf, m4 / nf);
    assert!(m1.abs() < 5.0 * (1.0 / nf).sqrt(), "mean {m1}");
    assert!((m2 - 1.0).abs() < 5.0 * (2.0 / nf).sqrt(), "variance {m2}");
    assert!((m4 - 3.0).abs() < 5.0 * (96.0 / nf).sqrt(), "fourth moment {m4}");
    let normal_cdf = |x: f64| 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2);
    for (c, t) in beyond.iter().zip(thresholds) {
        let p = 2.0 * (1.0 - normal_cdf(t));
        let se = (nf * p * (1.0 - p)).sqrt();
        assert!(
            ((*c as f64) - nf * p).abs() < 5.0 * se,
            "P(|z| > {t}): {c} of {n}, expected {}",
            nf * p
        );
    }
    // Every bin of width 0.2 on [-4, 4], within 5 binomial standard errors.
    for (b, count) in bins.iter().enumerate() {
        let lo = -4.0 + 0.2 * b as f64;
        let p = normal_cdf(lo + 0.2) - normal_cdf(lo);
        let se = (nf * p * (1.0 - p)).sqrt();
        assert!(
            ((*count as f64) - nf * p).abs() < 5.0 * se,
            "bin {lo}: {count}, expected {}",
            nf * p
        );
    }
}
