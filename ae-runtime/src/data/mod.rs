//! Data: the spiked covariance model (docs/theory.md section 2) and real data sets (one module
//! per file format), their standardisation and spectrum, and how SGD draws from them.

mod cifar;
mod csv;
pub mod empirical;
mod idx;
pub mod load;
mod npy;
mod photo;
pub mod sampling;
pub mod spiked;

pub use empirical::{covariance, covariance_bytes, eigen, eigen_faer, eigen_nalgebra, eigenvalues, RealData};
pub use load::{is_file, load, DataError, Format, LoadOptions, Samples, DEFAULT_MAX_BYTES, MAX_DIMENSION};
pub use photo::luminance;
pub use sampling::{DataSampler, Draw};
pub use spiked::*;
