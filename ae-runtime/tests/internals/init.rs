//! Initial conditions from coordinates against the order parameters of the canonical basis.

use ae_runtime::data::Weights;
use ae_runtime::data::{eigenvectors, EigenFamily};
use ae_runtime::init::*;

#[test]
fn coordinates_give_the_canonical_basis_order_parameters_to_the_bit() {
    // Debug text tells every bit apart that matters here, signed zeros included.
    for (k, d) in [(1, 7), (3, 40)] {
        let weights = Weights::random(k, d, 0.3, 11);
        let canonical = eigenvectors(EigenFamily::Canonical, d, d, 0);
        assert_eq!(
            format!("{:?}", from_coordinates(&weights)),
            format!("{:?}", from_weights_full(&weights, &canonical))
        );
    }
}
