//! Rate limits per visitor and per client address (GCRA, from `governor`), kept in memory
//! per replica. Behind a load balancer each replica counts on its own, so the effective limit
//! is at most the configured one times the number of replicas.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::Limits;

/// The keyed limiters.
pub struct Limiter {
    visitor: DefaultKeyedRateLimiter<String>,
    ip: DefaultKeyedRateLimiter<IpAddr>,
    new_visitor: DefaultKeyedRateLimiter<IpAddr>,
}

/// Refused: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited(pub Duration);

fn quota(per: u32, period: Duration) -> Quota {
    let n = NonZeroU32::new(per.max(1)).expect("at least 1");
    Quota::with_period(period / n.get())
        .expect("a non-zero period")
        .allow_burst(n)
}

fn check<K: std::hash::Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
) -> Result<(), Limited> {
    limiter
        .check_key(key)
        .map_err(|not_until| Limited(not_until.wait_time_from(DefaultClock::default().now())))
}

impl Limiter {
    /// Limiters for the configured rates.
    pub fn new(l: &Limits) -> Self {
        let minute = Duration::from_secs(60);
        Self {
            visitor: RateLimiter::keyed(quota(l.visitor_per_minute, minute)),
            ip: RateLimiter::keyed(quota(l.ip_per_minute, minute)),
            new_visitor: RateLimiter::keyed(quota(l.new_visitors_per_hour, 60 * minute)),
        }
    }

    /// One message, bot turn or handover request from a visitor.
    pub fn visitor(&self, visitor: &str) -> Result<(), Limited> {
        check(&self.visitor, &visitor.to_owned())
    }

    /// One request to a visitor endpoint from a client address.
    pub fn ip(&self, ip: IpAddr) -> Result<(), Limited> {
        check(&self.ip, &ip)
    }

    /// One new visitor from a client address.
    pub fn new_visitor(&self, ip: IpAddr) -> Result<(), Limited> {
        check(&self.new_visitor, &ip)
    }

    /// Forgets keys whose limits have fully recovered, so memory follows active clients.
    pub fn forget_idle(&self) {
        self.visitor.retain_recent();
        self.visitor.shrink_to_fit();
        self.ip.retain_recent();
        self.ip.shrink_to_fit();
        self.new_visitor.retain_recent();
        self.new_visitor.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_over_the_limit_is_refused_per_key() {
        let l = Limiter::new(&Limits {
            visitor_per_minute: 3,
            ip_per_minute: 100,
            new_visitors_per_hour: 1,
            login_failures: 5,
        });
        for _ in 0..3 {
            l.visitor("v_a").unwrap();
        }
        let Limited(wait) = l.visitor("v_a").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        l.visitor("v_b").expect("another visitor is not held back");
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        l.new_visitor(ip).unwrap();
        assert!(l.new_visitor(ip).is_err());
    }
}
