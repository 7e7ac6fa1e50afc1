//! Test data: bytes that are reproducible from a seed and do not compress to nothing.

/// `len` bytes of xorshift output from `seed` (the same seed, the same bytes).
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
