//! Idempotency keys (`client_msg_id`): never empty (the server would refuse one), unique
//! enough that two messages never share one.

use baton_protocol::ids::ClientMsgId;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A new key: 26 characters (130 bits) drawn from `random`, which returns values uniform in
/// `[0, 1)` (`Math.random` in a browser; a seeded generator in tests). `crypto.randomUUID`
/// is used instead where the app has it.
pub fn client_msg_id(mut random: impl FnMut() -> f64) -> ClientMsgId {
    let mut out = String::with_capacity(26);
    for _ in 0..26 {
        let i = (random().clamp(0.0, 0.999_999_999) * 32.0) as usize;
        out.push(ALPHABET[i] as char);
    }
    ClientMsgId(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// A small deterministic generator for the tests (xorshift).
    fn seeded(mut s: u64) -> impl FnMut() -> f64 {
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn keys_are_never_empty_and_do_not_repeat() {
        let mut r = seeded(42);
        let keys: HashSet<String> = (0..10_000).map(|_| client_msg_id(&mut r).0).collect();
        assert_eq!(keys.len(), 10_000);
        assert!(keys.iter().all(|k| k.len() == 26 && k.is_ascii()));
    }

    #[test]
    fn a_broken_source_still_gives_a_valid_key() {
        let k = client_msg_id(|| f64::NAN);
        assert_eq!(k.0.len(), 26);
        let k = client_msg_id(|| 1.0);
        assert!(k.0.chars().all(|c| c == 'z'));
    }
}
