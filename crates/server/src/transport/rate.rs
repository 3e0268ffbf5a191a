use tokio::time::Instant;

/// A token bucket: `rate` messages per second on average, bursts up to twice that.
pub struct RateLimit {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    /// When the client was last told it is limited, so a flood gets one error per second,
    /// not one per dropped message.
    warned: Option<Instant>,
}

pub enum Verdict {
    Allow,
    /// Drop the message; `true` when the client should be told.
    Drop(bool),
}

impl RateLimit {
    pub fn new(per_second: u32) -> RateLimit {
        let rate = f64::from(per_second.max(1));
        RateLimit {
            rate,
            burst: rate * 2.0,
            tokens: rate * 2.0,
            last: Instant::now(),
            warned: None,
        }
    }

    pub fn check(&mut self) -> Verdict {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allow;
        }
        let tell = self
            .warned
            .is_none_or(|w| now.duration_since(w).as_secs() >= 1);
        if tell {
            self.warned = Some(now);
        }
        Verdict::Drop(tell)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn burst_then_refill() {
        let mut r = RateLimit::new(5);
        for _ in 0..10 {
            assert!(matches!(r.check(), Verdict::Allow));
        }
        assert!(matches!(r.check(), Verdict::Drop(true)));
        assert!(matches!(r.check(), Verdict::Drop(false)));
        tokio::time::advance(Duration::from_millis(400)).await;
        assert!(matches!(r.check(), Verdict::Allow));
        assert!(matches!(r.check(), Verdict::Allow));
        assert!(matches!(r.check(), Verdict::Drop(false)));
    }
}
