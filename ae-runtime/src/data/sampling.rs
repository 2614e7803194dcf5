//! How SGD draws from real data: uniformly online, in epochs, or Gaussian samples with the
//! data's covariance.

use super::empirical::RealData;

/// How SGD draws from real data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Draw {
    /// A sample chosen uniformly at every step (online).
    Online,
    /// Epochs over the fixed set, each in a fresh random order.
    Epochs,
    /// Gaussian samples with the same covariance (for the universality comparison).
    Gaussian,
}

/// A sampler over real data.
pub struct DataSampler {
    data: std::sync::Arc<RealData>,
    draw: Draw,
    order: Vec<usize>,
    next: usize,
    /// Gaussian draws, made a batch at a time (built at the first draw).
    gaussian: Option<GaussianBatch>,
}

/// Gaussian samples with the data's covariance, `GAUSSIAN_BATCH` at a time: the normals are
/// drawn in the same order as one sample at a time (sample by sample, mode by mode), and
/// `X = Z A` with `A[τ] = √λ_τ e_τ` is one matrix product (D² multiply-adds a sample either
/// way, but at matrix-product speed).
struct GaussianBatch {
    /// D x D, row τ is √λ_τ e_τ.
    amplitudes: Vec<f64>,
    z: Vec<f64>,
    x: Vec<f64>,
    next: usize,
}

#[doc(hidden)]
pub const GAUSSIAN_BATCH: usize = 64;

impl GaussianBatch {
    fn new(data: &RealData) -> Self {
        let d = data.d;
        let mut amplitudes = Vec::with_capacity(d * d);
        for (e, l) in data.eigenvectors.iter().zip(&data.eigenvalues) {
            let s = l.sqrt();
            amplitudes.extend(e.iter().map(|v| s * v));
        }
        GaussianBatch {
            amplitudes,
            z: vec![0.0; GAUSSIAN_BATCH * d],
            x: vec![0.0; GAUSSIAN_BATCH * d],
            next: GAUSSIAN_BATCH,
        }
    }

    fn sample(&mut self, rng: &mut crate::sgd::SampleRng, out: &mut [f64]) {
        let d = out.len();
        if self.next == GAUSSIAN_BATCH {
            rng.fill_normal(&mut self.z);
            let (d_, one) = (d as isize, 1isize);
            // SAFETY: Z is B x D, A is D x D and X is B x D, all row-major (strides D, 1) in
            // buffers of exactly those sizes.
            unsafe {
                matrixmultiply::dgemm(
                    GAUSSIAN_BATCH,
                    d,
                    d,
                    1.0,
                    self.z.as_ptr(),
                    d_,
                    one,
                    self.amplitudes.as_ptr(),
                    d_,
                    one,
                    0.0,
                    self.x.as_mut_ptr(),
                    d_,
                    one,
                );
            }
            self.next = 0;
        }
        out.copy_from_slice(&self.x[self.next * d..(self.next + 1) * d]);
        self.next += 1;
    }
}

impl DataSampler {
    pub fn new(data: std::sync::Arc<RealData>, draw: Draw) -> Self {
        let n = data.rows.len();
        DataSampler {
            data,
            draw,
            order: (0..n).collect(),
            next: n,
            gaussian: None,
        }
    }
}

/// Asks the processor to bring `row` into its caches, without waiting for it.
fn prefetch(row: &[f64]) {
    #[cfg(target_arch = "x86_64")]
    for line in row.chunks(8) {
        // SAFETY: a prefetch is a hint that never faults, and the address is that of a live
        // slice element.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

impl crate::sgd::Sampler for DataSampler {
    fn d(&self) -> usize {
        self.data.d
    }
    fn sample(&mut self, rng: &mut crate::sgd::SampleRng, x: &mut [f64]) {
        use rand::Rng;
        let n = self.data.rows.len();
        match self.draw {
            Draw::Online => {
                x.copy_from_slice(&self.data.rows[rng.random_range(0..n)]);
                // The next sample's row is read while this step runs: a data set larger than
                // the cache made the copy above a third of a run (a miss on every row). Its
                // index comes from a copy of the generator, so the run's own draws, and its
                // numbers, are unchanged.
                let next = rng.clone().random_range(0..n);
                prefetch(&self.data.rows[next]);
            }
            Draw::Epochs => {
                if self.next >= n {
                    // Fisher-Yates with the run's own generator: reproducible.
                    for i in (1..n).rev() {
                        let j = rng.random_range(0..=i);
                        self.order.swap(i, j);
                    }
                    self.next = 0;
                }
                x.copy_from_slice(&self.data.rows[self.order[self.next]]);
                self.next += 1;
                if let Some(&next) = self.order.get(self.next) {
                    prefetch(&self.data.rows[next]);
                }
            }
            Draw::Gaussian => {
                let data = &self.data;
                self.gaussian
                    .get_or_insert_with(|| GaussianBatch::new(data))
                    .sample(rng, x)
            }
        }
    }
}
