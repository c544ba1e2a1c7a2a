//! Unpredictable 128-bit values without a random-number crate: std's
//! randomly keyed hasher (a fresh key per `RandomState`), fed a caller's
//! counter so that two values never come from the same input. For ids and
//! opaque tokens, not for keys or secrets.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// Two unpredictable words for `count` (give each value its own count).
pub(crate) fn words(count: u64) -> (u64, u64) {
    let word = |salt: u64| {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(count);
        hasher.write_u64(salt);
        hasher.finish()
    };
    (word(1), word(2))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_same_count_gives_other_words() {
        assert_ne!(super::words(7), super::words(7));
        let (high, low) = super::words(8);
        assert_ne!(high, low);
    }
}
