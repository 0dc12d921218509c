//! Randomness as an injected port: production draws a seed from the OS, simulation passes
//! its own, and the same seed always gives the same sequence.

use std::fmt::Debug;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// A source of random numbers that can be shared between tasks.
pub trait Rng: Send + Sync + Debug + 'static {
    /// The next random 64-bit number.
    fn next_u64(&self) -> u64;
}

/// A SplitMix64 generator: tiny, fast, and fully determined by its seed.
///
/// ```
/// use micro_core::rng::{Rng, SeededRng};
/// let a = SeededRng::new(7);
/// let b = SeededRng::new(7);
/// assert_eq!(a.next_u64(), b.next_u64());
/// ```
#[derive(Debug)]
pub struct SeededRng(AtomicU64);

impl SeededRng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(AtomicU64::new(seed))
    }

    /// A generator seeded from the process's hash randomness (OS entropy).
    pub fn from_entropy() -> Self {
        Self::new(entropy_seed())
    }
}

impl Rng for SeededRng {
    fn next_u64(&self) -> u64 {
        let state = self.0.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        let mut z = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A seed from OS entropy (std seeds `RandomState` from the OS).
pub fn entropy_seed() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x6d69_6372_6f21);
    hasher.finish()
}
