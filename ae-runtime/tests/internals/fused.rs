//! The fused SGD pass against its portable version and against the update written out naively.

use ae_runtime::internals::{pass_with, Pending, Rows, MAX_K};

/// Numbers of order one, different in every position.
fn numbers(n: usize, seed: usize) -> Vec<f64> {
    (0..n)
        .map(|i| ((i * 37 + seed * 101) % 97) as f64 / 48.0 - 1.0)
        .collect()
}

/// Every width, tie, rule, decay and pending state, on rows of a length with last columns
/// (D = 4 * 9 + 3): the dispatched pass (AVX2 and FMA on the machines this runs on) gives
/// the bits of the portable one, and both the numbers of the update and the sums written
/// out naively (within 1e-13: the same operations on numbers of order one, some rounded
/// twice in the naive version where the pass fuses them).
#[test]
fn every_variant_equals_the_portable_pass_and_the_naive_update() {
    let d = 4 * 9 + 3;
    let x = numbers(d, 1);
    let x_prev = numbers(d, 2);
    for k in 1..=MAX_K {
        let (g, decoder, encoder) = (numbers(k, 3), numbers(k, 4), numbers(k, 5));
        for (tied, truncated, shrink, pending) in
            (0..16).map(|b| (b & 1 != 0, b & 2 != 0, if b & 4 != 0 { 0.99 } else { 1.0 }, b & 8 != 0))
        {
            let w0 = numbers(k * d, 6);
            let v0 = if tied { vec![] } else { numbers(k * d, 7) };
            let step = Pending {
                x_prev: &x_prev,
                g: &g,
                decoder: &decoder,
                encoder: &encoder,
                shrink,
            };
            let pending = pending.then_some(&step);
            let run = |portable: bool| {
                let (mut w, mut v) = (w0.clone(), v0.clone());
                let rows = Rows {
                    w: &mut w,
                    v: &mut v,
                    x: &x,
                    k,
                    truncated,
                };
                let sums = pass_with(rows, pending, portable);
                (w, v, sums)
            };
            let (w, v, sums) = run(false);
            let (pw, pv, psums) = run(true);
            let case = format!(
                "K={k} tied={tied} truncated={truncated} shrink={shrink} pending={}",
                pending.is_some()
            );
            let bits = |a: &[f64]| a.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&w), bits(&pw), "{case}");
            assert_eq!(bits(&v), bits(&pv), "{case}");
            assert_eq!(bits(&sums.lambda), bits(&psums.lambda), "{case}");
            assert_eq!(bits(&sums.decoder_x), bits(&psums.decoder_x), "{case}");
            assert_eq!(sums.xx.to_bits(), psums.xx.to_bits(), "{case}");

            // The naive update and sums.
            let (mut ew, mut ev) = (w0.clone(), if tied { w0.clone() } else { v0.clone() });
            if let Some(p) = pending {
                let old = ev.clone();
                for j in 0..k {
                    let upto = if truncated { j + 1 } else { k };
                    for c in 0..d {
                        let r = p.x_prev[c] - (0..upto).map(|i| p.g[i] * old[i * d + c]).sum::<f64>();
                        let at = j * d + c;
                        if tied {
                            ew[at] = (ew[at] + p.decoder[j] * r + p.encoder[j] * p.x_prev[c]) * p.shrink;
                        } else {
                            ev[at] = (ev[at] + p.decoder[j] * r) * p.shrink;
                            ew[at] = (ew[at] + p.encoder[j] * p.x_prev[c]) * p.shrink;
                        }
                    }
                }
            }
            if tied {
                ev = ew.clone();
            }
            let close = |a: f64, e: f64| (a - e).abs() <= 1e-13 * e.abs().max(1.0);
            for (a, e) in w
                .iter()
                .zip(&ew)
                .chain(v.iter().zip(if tied { &[][..] } else { &ev[..] }))
            {
                assert!(close(*a, *e), "{case}: {a} vs {e}");
            }
            let dot = |a: &[f64]| a.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>();
            for j in 0..k {
                assert!(close(sums.lambda[j], dot(&ew[j * d..(j + 1) * d])), "{case}");
                if !tied {
                    assert!(close(sums.decoder_x[j], dot(&ev[j * d..(j + 1) * d])), "{case}");
                }
            }
            assert!(close(sums.xx, dot(&x)), "{case}");
        }
    }
}
