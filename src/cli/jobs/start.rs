//! The initial weights a run starts from: random, informed, perfect, or read from a file.

use super::super::args::ModelArgs;
use super::{finite, parse_list, DEFAULT_INIT_STD};
use crate::error::{input, RunError};
use crate::source::InitChoice;
use ae_core::activation::Activation;
use ae_runtime::data::{Spiked, Weights};

fn read_weights(path: &str, k: usize) -> Result<Weights, RunError> {
    let text = crate::files::read_text(path, "--weights")?;
    let rows: Vec<Vec<f64>> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            l.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|x| !x.is_empty())
                .map(|x| {
                    x.parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite())
                        .ok_or_else(|| RunError::Input(format!("{path}:{}: `{x}` is not a finite number", i + 1)))
                })
                .collect()
        })
        .collect::<Result<_, _>>()?;
    if rows.len() != 2 * k {
        return input(format!(
            "{path}: expected {} rows (K encoder rows, then K decoder rows), found {}",
            2 * k,
            rows.len()
        ));
    }
    let d = rows[0].len();
    if let Some(i) = rows.iter().position(|r| r.len() != d) {
        return input(format!(
            "{path}: row {} has {} numbers, row 1 has {d}",
            i + 1,
            rows[i].len()
        ));
    }
    let v = rows[k..].to_vec();
    let w = rows[..k].to_vec();
    Ok(Weights { w, v })
}

/// The start the options describe: at most one of --informed, --weights and --perfect, else
/// i.i.d. weights of --init-std from --seed.
pub(super) fn start(a: &ModelArgs) -> Result<InitChoice, RunError> {
    let init_std = a.init_std.unwrap_or(DEFAULT_INIT_STD);
    let starts = [a.informed.is_some(), a.weights.is_some(), a.perfect.is_some()];
    if starts.iter().filter(|s| **s).count() > 1 {
        return input("give at most one of --informed, --perfect and --weights");
    }
    let init = match (&a.informed, &a.weights) {
        (Some(s), _) => {
            let v = parse_list("informed", s)?;
            let [a_, b_] = v[..] else {
                return input("--informed takes two numbers `a,b`");
            };
            InitChoice::Informed { a: a_, b: b_ }
        }
        (None, Some(path)) => InitChoice::Weights(read_weights(path, a.k)?),
        (None, None) => InitChoice::Random {
            seed: a.seed,
            std: init_std,
        },
    };
    Ok(init)
}

/// `--perfect a`: w_k = a e_k and v_k = b_k sqrt(D) e_k with the b_k that minimises the
/// aligned error (docs/theory.md section 7); checked after the other options, as before.
pub(super) fn perfect(
    a: &ModelArgs,
    data: &Spiked,
    activation: Activation,
    scale: f64,
) -> Result<InitChoice, RunError> {
    if !scale.is_finite() || scale == 0.0 {
        return input("--perfect takes a finite, non-zero encoder scale a");
    }
    if a.data.data.is_some() {
        return input("--perfect needs the spiked model (not --data)");
    }
    let rho = data.spike_rho();
    if a.k > rho.len() {
        return input(format!("--perfect needs K <= M (K = {}, M = {})", a.k, rho.len()));
    }
    let b = rho[..a.k]
        .iter()
        .map(|r| ae_runtime::init::perfect_decoder(activation, *r, scale))
        .collect();
    Ok(InitChoice::Aligned { a: vec![scale; a.k], b })
}

/// Checks --init-std (before the options that follow it on the command line).
pub(super) fn check_init_std(a: &ModelArgs) -> Result<(), RunError> {
    let init_std = a.init_std.unwrap_or(DEFAULT_INIT_STD);
    if finite("init-std", init_std)? <= 0.0 {
        return input("--init-std must be positive");
    }
    Ok(())
}
