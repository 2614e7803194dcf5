//! Malformed equation files: each mistake is an error at file:line:column with a message a
//! person understands.

const GOOD: &str = "\
equations tiny
hidden k, l, a
modes tau
param lr = 1
state omega[k; tau] init omega0[k; tau]
state T0[k, l] symmetric init T00[k, l]
let Q[k, l] = sum(tau, rho[tau] * omega[k; tau] * omega[l; tau])
d/dt omega[k; tau] = -lr * rho[tau] * omega[k; tau]
d/dt T0[k, l] = -lr * sum(a, I2(Q[k,k], Q[k,a], Q[a,a]) * T0[a, l])
observe eg = sum(k, T0[k, k])
";

/// Compiles `GOOD` with `from` replaced by `to`; returns the error's "line:col: message".
fn error_of(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "test bug: `{from}` not in the base file");
    let src = GOOD.replacen(from, to, 1);
    match ae_dsl::compile("tiny.ae", &src) {
        Ok(_) => panic!("accepted a malformed file:\n{src}"),
        Err(e) => {
            let text = e.to_string();
            assert!(text.starts_with("tiny.ae:"), "error without file name: {text}");
            text["tiny.ae:".len()..].to_string()
        }
    }
}

#[test]
fn the_base_file_compiles() {
    ae_dsl::compile("tiny.ae", GOOD).unwrap();
}

#[test]
fn unknown_name() {
    assert_eq!(
        error_of("-lr * rho[tau]", "-eta * rho[tau]"),
        "8:23: unknown name `eta`"
    );
}

#[test]
fn wrong_index_count() {
    assert_eq!(
        error_of("* T0[a, l])", "* T0[a])"),
        "9:59: `T0` takes 2 hidden-unit indices, found 1 hidden-unit index"
    );
}

#[test]
fn state_without_equation() {
    assert_eq!(
        error_of(
            "d/dt T0[k, l] = -lr * sum(a, I2(Q[k,k], Q[k,a], Q[a,a]) * T0[a, l])\n",
            ""
        ),
        "6:7: state `T0` has no equation: add `d/dt T0... = ...`"
    );
}

#[test]
fn unknown_average() {
    let e = error_of("I2(Q[k,k]", "I4(Q[k,k]");
    assert!(e.starts_with("9:30: unknown function or average `I4`"), "{e}");
    assert!(e.contains("I2, J2, I21, I22, I3"), "{e}");
}

#[test]
fn wrong_average_arity() {
    assert_eq!(
        error_of("I2(Q[k,k], Q[k,a], Q[a,a])", "I2(Q[k,k], Q[a,a])"),
        "9:30: `I2` takes 3 covariance entries (C11, C12, C22), found 2"
    );
}

#[test]
fn syntax_error() {
    assert_eq!(
        error_of("* omega[k; tau]\n", "* omega[k; tau\n"),
        "9:1: expected `]` to close the index list, found `d`"
    );
}

#[test]
fn unbound_index() {
    assert_eq!(
        error_of("observe eg = sum(k, T0[k, k])", "observe eg = T0[k, k]"),
        "10:17: index `k` is not bound here: put it on the left-hand side or sum over it with `sum(k, ...)`"
    );
}

#[test]
fn mode_index_in_hidden_slot() {
    assert_eq!(
        error_of("omega[k; tau] * omega[l; tau])", "omega[tau; tau] * omega[l; tau])"),
        "7:41: this slot takes a hidden-unit index"
    );
}

#[test]
fn equation_for_unknown_state() {
    assert_eq!(
        error_of("d/dt omega[k; tau]", "d/dt omga[k; tau]"),
        "8:6: `d/dt omga`: no state named `omga`"
    );
}

#[test]
fn unexpected_character() {
    assert_eq!(
        error_of("param lr = 1", "param lr = 1 $"),
        "4:14: unexpected character `$`"
    );
}

#[test]
fn duplicate_equation() {
    assert_eq!(
        error_of("observe eg", "d/dt omega[k; tau] = 0\nobserve eg"),
        "10:6: state `omega` has a second `d/dt` equation"
    );
}

#[test]
fn hidden_index_above_k_is_rejected_at_generation() {
    let src = GOOD.replacen("T0[k, k])", "T0[k, 5])", 1);
    let model = ae_dsl::compile("tiny.ae", &src).unwrap();
    let e = ae_dsl::unroll::check_k(&model, 3).unwrap_err();
    assert!(
        e.to_string().contains("hidden unit 5, which does not exist for K = 3"),
        "{e}"
    );
    ae_dsl::unroll::check_k(&model, 6).unwrap();
}
