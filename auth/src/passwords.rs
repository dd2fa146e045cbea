//! Password hashing: Argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane), off the async
//! workers, with a cap on how many hashes run at once.
//!
//! A hash takes ~35 ms of one core and 19 MiB of memory. Run on the async workers it would stall
//! every other request; uncapped, a burst of sign-ins would queue hundreds of them and exhaust
//! memory. So each takes a semaphore permit and runs on a small pool of dedicated threads, one per
//! permit. Dedicated threads matter as much as the cap: the allocator keeps an arena per thread
//! that has hashed, and on tokio's blocking pool (threads come and go) that grew auth's resident
//! memory to 800 MB after a few hundred sign-ups (docs/BENCHMARKS.md); with a fixed pool it is
//! bounded by the pool's size.

use std::sync::Arc;
use std::time::Instant;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use prometheus::Histogram;
use proto::api::auth::Password;
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the hashing thread panicked")]
    Panicked,
    #[error("cannot start the hashing threads: {0}")]
    Pool(#[from] rayon::ThreadPoolBuildError),
}

#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    pool: Arc<rayon::ThreadPool>,
    /// Verified against when the username does not exist, so a wrong username costs what a wrong
    /// password costs and timing does not tell which accounts exist.
    dummy: Arc<String>,
    duration: Histogram,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(
        Params::DEFAULT_M_COST,
        Params::DEFAULT_T_COST,
        Params::DEFAULT_P_COST,
        None,
    )
    .expect("OWASP's argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl Passwords {
    pub async fn new(concurrency: usize, duration: Histogram) -> Result<Self, HashError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(concurrency.max(1))
            .thread_name(|i| format!("argon2-{i}"))
            .build()?;
        let mut passwords = Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            pool: Arc::new(pool),
            dummy: Arc::new(String::new()),
            duration,
        };
        let dummy = Password::parse("not anyone's password").expect("a valid password");
        passwords.dummy = Arc::new(passwords.hash(dummy).await?);
        Ok(passwords)
    }

    /// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`) of `password`, with a random salt.
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        self.run(move || {
            argon2()
                .hash_password(password.expose().as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| HashError::Hash(e.to_string()))
        })
        .await?
    }

    /// Whether `password` matches `stored`; with no stored hash (no such user) it spends the same
    /// time on a dummy hash and answers false.
    pub async fn verify(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.dummy.as_str().to_owned());
        self.run(move || {
            let parsed = PasswordHash::new(&phc).map_err(|e| HashError::Hash(e.to_string()))?;
            let matches = argon2()
                .verify_password(password.expose().as_bytes(), &parsed)
                .is_ok();
            Ok(matches && known)
        })
        .await?
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the hashing semaphore is never closed");
        let duration = self.duration.clone();
        let (done, out) = tokio::sync::oneshot::channel();
        self.pool.spawn(move || {
            let started = Instant::now();
            let out = work();
            duration.observe(started.elapsed().as_secs_f64());
            let _ = done.send(out);
        });
        out.await.map_err(|_| HashError::Panicked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram() -> Histogram {
        Histogram::with_opts(prometheus::HistogramOpts::new("h", "h")).unwrap()
    }

    #[tokio::test]
    async fn a_hash_uses_argon2id_with_owasp_parameters_and_verifies() {
        let passwords = Passwords::new(1, histogram()).await.unwrap();
        let pw = Password::parse("correct horse").unwrap();
        let hash = passwords.hash(pw.clone()).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(passwords.verify(pw, Some(hash.clone())).await.unwrap());
        let wrong = Password::parse("wrong horse").unwrap();
        assert!(!passwords.verify(wrong, Some(hash)).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies_even_with_the_dummy_password() {
        let passwords = Passwords::new(1, histogram()).await.unwrap();
        let dummy = Password::parse("not anyone's password").unwrap();
        assert!(!passwords.verify(dummy, None).await.unwrap());
    }
}
