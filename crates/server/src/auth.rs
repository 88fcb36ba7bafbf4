//! Secrets: random tokens, their hashes (the only form stored), password hashing off the
//! request threads, and the back-off after repeated failed logins.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use blake2::{Blake2s256, Digest};
use tokio::sync::Semaphore;

/// A random hex string of `bytes` random bytes.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source is available");
    hex(&buf)
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A new bearer token: 32 random bytes, hex.
pub fn new_token() -> String {
    random_hex(32)
}

/// The stored form of a bearer token. Tokens are 256 random bits, so a fast unsalted hash is
/// enough: nobody can guess a token from its hash, and lookups stay one index probe.
pub fn token_hash(token: &str) -> String {
    hex(&Blake2s256::digest(token.as_bytes()))
}

/// Argon2 hashing and checking, on the blocking pool, a few at a time, so a burst of logins
/// never stalls the threads that serve requests.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// A hash of nothing anyone knows, checked for unknown e-mails so a login takes the same
    /// time whether or not the account exists.
    dummy: Arc<String>,
}

impl Passwords {
    /// At most `parallel` hashes at once.
    pub fn new(parallel: usize) -> Self {
        let dummy = hash_now(&random_hex(16)).expect("hashing works");
        Self {
            permits: Arc::new(Semaphore::new(parallel.max(1))),
            dummy: Arc::new(dummy),
        }
    }

    /// An Argon2 PHC string for `password`.
    pub async fn hash(&self, password: &str) -> Result<String, String> {
        let _permit = self.permits.acquire().await.map_err(|e| e.to_string())?;
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hash_now(&password))
            .await
            .map_err(|e| e.to_string())?
    }

    /// Whether `password` matches `hash`; with `None`, checks against a dummy hash (same
    /// cost) and answers false.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let known = hash.is_some();
        let hash = hash.map_or_else(|| self.dummy.as_str().to_owned(), str::to_owned);
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash).is_ok_and(|h| {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false);
        ok && known
    }
}

fn hash_now(password: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(random_hex(16).as_bytes()).map_err(|e| e.to_string())?;
    Ok(argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| e.to_string())?
        .to_string())
}

/// Failed logins per e-mail and per client address. After `allowed` failures in a row, each
/// further attempt must wait 1 s, then 2 s, 4 s … up to 15 minutes; a success clears it.
pub struct LoginThrottle {
    allowed: u32,
    failures: Mutex<HashMap<String, (u32, i64)>>,
}

/// Longest wait between attempts.
const MAX_BACKOFF_MS: i64 = 15 * 60 * 1000;

impl LoginThrottle {
    /// `allowed` failures before the back-off starts.
    pub fn new(allowed: u32) -> Self {
        Self {
            allowed,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Starts a login attempt: refused with the time still to wait (ms) while held back;
    /// otherwise counted as a failure at once (a success clears it), so a burst of
    /// concurrent guesses cannot all pass before the first one fails.
    pub fn begin(&self, keys: &[String], now_ms: i64) -> Result<(), i64> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(wait) = keys
            .iter()
            .filter_map(|k| map.get(k))
            .map(|&(_, until)| until - now_ms)
            .filter(|&w| w > 0)
            .max()
        {
            return Err(wait);
        }
        if map.len() > 100_000 {
            // Forget whoever is not currently held back, so the map cannot grow without end.
            map.retain(|_, &mut (_, until)| until > now_ms);
        }
        for k in keys {
            let entry = map.entry(k.clone()).or_insert((0, 0));
            entry.0 += 1;
            if entry.0 >= self.allowed {
                let doublings = (entry.0 - self.allowed).min(20);
                entry.1 = now_ms + (1000i64 << doublings).min(MAX_BACKOFF_MS);
            }
        }
        Ok(())
    }

    /// Clears the record after a successful login.
    pub fn succeeded(&self, keys: &[String]) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for k in keys {
            map.remove(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), a);
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn the_back_off_doubles_after_the_allowed_failures() {
        let t = LoginThrottle::new(3);
        let keys = ["email:a@b".to_owned()];
        // Attempts count as failures as they start: the fourth, even concurrent, must wait.
        for _ in 0..3 {
            assert_eq!(t.begin(&keys, 0), Ok(()));
        }
        assert_eq!(t.begin(&keys, 0), Err(1000));
        assert_eq!(t.begin(&keys, 1500), Ok(()));
        assert_eq!(t.begin(&keys, 1500), Err(2000));
        t.succeeded(&keys);
        assert_eq!(t.begin(&keys, 1500), Ok(()));
    }

    #[tokio::test]
    async fn unknown_accounts_are_checked_at_the_same_cost() {
        let p = Passwords::new(2);
        let hash = p.hash("secret").await.unwrap();
        assert!(p.verify("secret", Some(&hash)).await);
        assert!(!p.verify("wrong", Some(&hash)).await);
        assert!(!p.verify("secret", None).await);
    }
}
