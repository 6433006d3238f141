//! Seeded randomness. Every draw is a pure function of the run's seed and of
//! the identity of what it is drawn for (a person, an encounter, a day), never
//! of the order in which threads happen to get there: the same seed gives the
//! same run on one thread or on many.

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// Labels that keep the streams of different purposes apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Purpose {
    /// Building the population.
    Population = 1,
    /// One day of mixing.
    Day = 2,
    /// Whether one encounter infects.
    Infection = 3,
    /// The course of one infection.
    Course = 4,
    /// One phone's Temporary Exposure Key of one UTC day.
    Tek = 5,
    /// When one phone rotates its identifier during one UTC day.
    Rotation = 6,
    /// The radio of one direction of one encounter.
    Radio = 7,
    /// One phone's scan and check rhythm.
    Rhythm = 8,
    /// The key server's fake keys and signing key.
    Server = 9,
    /// One patient's registration.
    Registration = 10,
    /// One contact of a controlled trial (`cocoa simulate trial`).
    Trial = 11,
    /// The paired bootstrap of `--compare`.
    Bootstrap = 12,
}

/// SplitMix64's finaliser: a bijective mix of 64 bits.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of the stream for `purpose` and the identities `ids`.
pub fn derive(seed: u64, purpose: Purpose, ids: &[u64]) -> u64 {
    let mut h = mix64(seed ^ 0x6a09_e667_f3bc_c908);
    h = mix64(h ^ (purpose as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    for &id in ids {
        h = mix64(h.wrapping_add(id).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ h.rotate_left(17));
    }
    h
}

/// A fast generator for the simulation's own draws (SplitMix64). Not for
/// secrets: keys come from [`crypto_rng`].
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// The stream for `purpose` and `ids` under `seed`.
    pub fn new(seed: u64, purpose: Purpose, ids: &[u64]) -> Self {
        Self {
            state: derive(seed, purpose, ids),
        }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn bits(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.state)
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.bits() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    #[inline]
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in `[0, n)` (0 when `n` is 0).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.bits()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform integer in `[lo, hi]`.
    #[inline]
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// True with probability `p`.
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Standard normal (Box–Muller; one of the pair is used).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit(); // (0, 1]
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Log-normal with the given median and log-scale spread.
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    /// Exponential with the given mean.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    /// An index drawn with the given weights (which need not sum to 1).
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len().saturating_sub(1)
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// A cryptographically secure generator for key material (TEKs, the export
/// signing key), seeded like every other stream so that runs repeat.
pub fn crypto_rng(seed: u64, purpose: Purpose, ids: &[u64]) -> ChaCha20Rng {
    let mut bytes = [0u8; 32];
    let mut r = Rng::new(seed, purpose, ids);
    for chunk in bytes.chunks_exact_mut(8) {
        chunk.copy_from_slice(&r.bits().to_le_bytes());
    }
    ChaCha20Rng::from_seed(bytes)
}

/// A [`RngCore`] over [`Rng`], for functions of other crates that take one
/// (the key server's fake keys).
#[derive(Debug, Clone)]
pub struct CoreRng(pub Rng);

impl RngCore for CoreRng {
    fn next_u32(&mut self) -> u32 {
        (self.0.bits() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0.bits()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.0.bits().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_depend_on_seed_purpose_and_ids_only() {
        let a = Rng::new(1, Purpose::Day, &[3]).bits();
        assert_eq!(a, Rng::new(1, Purpose::Day, &[3]).bits());
        assert_ne!(a, Rng::new(2, Purpose::Day, &[3]).bits());
        assert_ne!(a, Rng::new(1, Purpose::Course, &[3]).bits());
        assert_ne!(a, Rng::new(1, Purpose::Day, &[4]).bits());
        assert_ne!(
            Rng::new(1, Purpose::Day, &[1, 2]).bits(),
            Rng::new(1, Purpose::Day, &[2, 1]).bits()
        );
    }

    #[test]
    fn distributions_have_the_right_moments() {
        let mut r = Rng::new(9, Purpose::Population, &[]);
        let n = 200_000;
        let normals: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let mean = normals.iter().sum::<f64>() / n as f64;
        let var = normals.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.02, "{var}");
        let exp_mean = (0..n).map(|_| r.exponential(3.0)).sum::<f64>() / n as f64;
        assert!((exp_mean - 3.0).abs() < 0.05, "{exp_mean}");
        let mut below = [0u32; 5];
        for _ in 0..n {
            below[r.below(5) as usize] += 1;
        }
        assert!(
            below
                .iter()
                .all(|&c| (c as f64 - n as f64 / 5.0).abs() < 1500.0)
        );
        assert_eq!(r.weighted(&[0.0, 1.0, 0.0]), 1);
    }
}
