//! Designs: how the uniform numbers of sample k are made, from random
//! streams keyed by (seed, domain, k) alone.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::sweep::plan::Plan;

/// How sample points are spread over the parameter space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Design {
    /// Independent uniform draws per sample.
    #[default]
    MonteCarlo,
    /// Each parameter's range cut into `samples` equal-probability strata,
    /// one sample per stratum, strata shuffled independently per parameter.
    LatinHypercube,
    /// Owen-scrambled Sobol' points (at most 256 uncertain parameters).
    Sobol,
}

/// The largest Sobol' dimension count of the scrambled-Sobol' generator.
pub const SOBOL_MAX_DIMENSIONS: usize = sobol_burley::NUM_DIMENSIONS as usize;

/// Random streams are keyed by (seed, domain), so the parameter draws, the
/// Latin-hypercube jitter and the data noise never share numbers.
const DOMAIN_PARAMETERS: u64 = 1;
pub(crate) const DOMAIN_NOISE: u64 = 2;
const DOMAIN_PERMUTATION: u64 = 3;
/// The B matrix of a sensitivity design ([`Side::B`]): its own parameter
/// draws, Latin-hypercube permutation keys and data noise, independent of
/// A's, which are the plain sweep's.
const DOMAIN_PARAMETERS_B: u64 = 4;
pub(crate) const DOMAIN_NOISE_B: u64 = 5;
const DOMAIN_PERMUTATION_B: u64 = 6;

/// The two independent base samples of a sensitivity design: A is the
/// plain sweep's sample k, B an independent one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

pub(crate) fn stream(seed: u64, domain: u64, sample: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&domain.to_le_bytes());
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(sample);
    rng
}

/// The largest double below 1.
const BELOW_ONE: f64 = 1.0 - f64::EPSILON / 2.0;

/// A uniform number strictly inside (0, 1), from 52 random bits: the middle
/// of one of 2^52 equal cells, so neither 0 nor 1 can come out (with 53 bits
/// the top cell's middle would round up to 1).
fn open_unit(rng: &mut ChaCha8Rng) -> f64 {
    ((rng.next_u64() >> 12) as f64 + 0.5) * (1.0 / (1u64 << 52) as f64)
}

/// A random permutation of 0..n evaluated at one index, keyed by `key`:
/// Kensler's hash-based permutation ("Correlated Multi-Jittered Sampling",
/// Pixar 2013) with cycle walking, so a Latin-hypercube stratum can be found
/// for sample k without building the whole permutation.
fn permute(mut i: u64, n: u64, key: u64) -> u64 {
    debug_assert!(i < n);
    if n <= 1 {
        return 0;
    }
    let mask = u64::MAX >> (n - 1).leading_zeros();
    loop {
        // A bijection on 0..=mask: xorshift-multiply rounds keyed by `key`.
        let mut x = i;
        for round in 0..4u64 {
            let k = key.wrapping_add(round.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            x ^= k & mask;
            x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9 | 1) & mask;
            x ^= (x & mask) >> (mask.count_ones() / 2 + 1);
            x = x.wrapping_add(k >> 7) & mask;
        }
        if x < n {
            return x;
        }
        i = x;
    }
}

impl Plan {
    /// The uniform numbers of sample `k`, one per dimension, per the design.
    pub(crate) fn uniforms(&self, k: u64) -> Vec<f64> {
        self.uniforms_of(k, Side::A)
    }

    /// The uniform numbers of sample `k` of base matrix `side`: A's are
    /// [`Plan::uniforms`]; B's come from their own streams and permutation
    /// keys, and for Sobol' from dimensions d..2d of the same point (d the
    /// uncertain parameters; the plan refuses 2d beyond the generator's).
    pub(crate) fn uniforms_of(&self, k: u64, side: Side) -> Vec<f64> {
        let mut u = Vec::with_capacity(self.dimensions.len());
        self.uniforms_into(k, side, &mut u);
        u
    }

    /// [`Plan::uniforms_of`] into `u` (cleared first), which a sweep reuses.
    pub(crate) fn uniforms_into(&self, k: u64, side: Side, u: &mut Vec<f64>) {
        u.clear();
        let (parameters, permutation) = match side {
            Side::A => (DOMAIN_PARAMETERS, DOMAIN_PERMUTATION),
            Side::B => (DOMAIN_PARAMETERS_B, DOMAIN_PERMUTATION_B),
        };
        let mut rng = stream(self.seed, parameters, k);
        let mut sobol_dimension = match side {
            Side::A => 0u32,
            Side::B => self.dimensions.iter().filter(|d| !d.distribution.is_fixed()).count() as u32,
        };
        // The Sobol' scramble seed: the user's seed folded to 32 bits.
        let sobol_seed = (self.seed ^ (self.seed >> 32)) as u32;
        for (d, dimension) in self.dimensions.iter().enumerate() {
            if dimension.distribution.is_fixed() {
                u.push(0.5);
                continue;
            }
            let value = match self.design {
                Design::MonteCarlo => open_unit(&mut rng),
                Design::LatinHypercube => {
                    let mut key_rng = stream(self.seed, permutation, d as u64);
                    let stratum = permute(k, self.samples, key_rng.next_u64());
                    // In the top stratum the division can round up to 1;
                    // keep the number inside (0, 1) like the other designs.
                    ((stratum as f64 + open_unit(&mut rng)) / self.samples as f64).min(BELOW_ONE)
                }
                Design::Sobol => {
                    let x = sobol_burley::sample(k as u32, sobol_dimension, sobol_seed);
                    sobol_dimension += 1;
                    // The generator gives multiples of 2^-24 in [0, 1); move to
                    // the middle of the cell so the quantile is never at 0.
                    f64::from(x) + 0.5 / f64::from(1u32 << 24)
                }
            };
            u.push(value);
        }
    }
}

/// Uniform numbers for tests of designs: dimension `d` of samples 0..n.
pub fn design_points(plan: &Plan, n: u64) -> Vec<Vec<f64>> {
    (0..n).map(|k| plan.uniforms(k)).collect()
}
