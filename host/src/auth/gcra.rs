//! Rate limits as GCRA, the generic cell rate algorithm: a limit of `L` events per period `P`
//! lets `L` events through at once and then one every `P / L` (the emission interval `T`),
//! so a tenant who used up a window waits seconds for the next event, not until a clock hour
//! ends. The whole state of a window is one number, its theoretical arrival time (TAT, unix
//! ms): an event at `now` is allowed when `max(TAT, now) - now ≤ (L - 1)·T`, and then moves
//! the TAT to `max(TAT, now) + T`. The database keeps the TATs (one row per subject, see
//! [`crate::db::accounts::AccountDb::take_rate`]) so every replica shares them; this module is
//! the arithmetic, the same on both sides of that call.

/// One minute, in ms.
pub const MINUTE_MS: i64 = 60_000;
/// One hour, in ms.
pub const HOUR_MS: i64 = 3_600_000;

/// The GCRA subject of a quota subject's requests (`req usr_…`; migration 0008 counts the
/// requests of these subjects for usage reports).
pub fn requests_subject(quota_subject: &str) -> String {
    format!("req {quota_subject}")
}

/// The GCRA subject of a quota subject's generation creations (`gen usr_…`).
pub fn generations_subject(quota_subject: &str) -> String {
    format!("gen {quota_subject}")
}

/// `limit` events per `period_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    limit: u64,
    period_ms: i64,
}

impl Rate {
    /// `limit` events per `period_ms` milliseconds. A limit of 0 is taken as 1 (the
    /// configuration refuses 0: a tier that may not do something says so in the policy).
    pub fn new(limit: u64, period_ms: i64) -> Self {
        Self { limit: limit.max(1), period_ms: period_ms.max(1) }
    }

    /// `limit` events per minute.
    pub fn per_minute(limit: u64) -> Self {
        Self::new(limit, MINUTE_MS)
    }

    /// `limit` events per hour.
    pub fn per_hour(limit: u64) -> Self {
        Self::new(limit, HOUR_MS)
    }

    /// Events allowed per period.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The period, ms.
    pub fn period_ms(&self) -> i64 {
        self.period_ms
    }

    /// `T`: ms between events at the sustained rate, rounded up (so the rate is never
    /// exceeded) and at least 1.
    pub fn emission_ms(&self) -> i64 {
        let limit = i64::try_from(self.limit).unwrap_or(i64::MAX);
        let whole = self.period_ms / limit;
        (whole + i64::from(self.period_ms % limit != 0)).max(1)
    }

    /// `(L - 1)·T`: how far ahead of `now` the TAT may be for an event to pass. Exactly `L`
    /// events pass at once whatever the rounding of `T`.
    pub fn tolerance_ms(&self) -> i64 {
        let limit = i64::try_from(self.limit).unwrap_or(i64::MAX);
        self.emission_ms().saturating_mul(limit - 1)
    }

    /// Take one event at `now` from a window whose TAT is `tat` (0: never used): the new TAT
    /// when it passes, or `Err(ms)` to wait before it would.
    pub fn take(&self, tat: i64, now: i64) -> Result<i64, i64> {
        let base = tat.max(now);
        let ahead = base - now;
        if ahead <= self.tolerance_ms() {
            Ok(base.saturating_add(self.emission_ms()))
        } else {
            Err(ahead - self.tolerance_ms())
        }
    }

    /// Events that would pass right now, 0..=limit.
    pub fn remaining(&self, tat: i64, now: i64) -> u64 {
        let ahead = tat.max(now) - now;
        let room = self.tolerance_ms().saturating_add(self.emission_ms()) - ahead;
        u64::try_from(room.div_euclid(self.emission_ms())).unwrap_or(0).min(self.limit)
    }

    /// Ms until one more event would pass (0: now).
    pub fn wait_ms(&self, tat: i64, now: i64) -> i64 {
        (tat.max(now) - now - self.tolerance_ms()).max(0)
    }
}

/// What a window counts, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counted {
    /// Authenticated requests.
    Requests,
    /// Generations created.
    Generations,
}

/// The windows of one subject: per minute and per hour, each optional.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateWindows {
    /// The per-minute rate.
    pub minute: Option<Rate>,
    /// The per-hour rate.
    pub hour: Option<Rate>,
}

impl RateWindows {
    /// No window: nothing to count.
    pub fn is_empty(&self) -> bool {
        self.minute.is_none() && self.hour.is_none()
    }

    /// The windows with their TATs from `state`.
    fn with_tats(&self, state: RateState) -> impl Iterator<Item = (Rate, i64)> {
        [self.minute.map(|r| (r, state.minute_tat)), self.hour.map(|r| (r, state.hour_tat))].into_iter().flatten()
    }

    /// Take one event at `now` from every window, all or nothing: the new state, or `None`
    /// when a window has no room (the state stays as it was).
    pub fn take(&self, state: RateState, now: i64) -> Option<RateState> {
        let take = |rate: Option<Rate>, tat: i64| match rate {
            Some(r) => r.take(tat, now).ok(),
            None => Some(tat.max(now)),
        };
        Some(RateState { minute_tat: take(self.minute, state.minute_tat)?, hour_tat: take(self.hour, state.hour_tat)? })
    }

    /// How the windows stand at `now` in `state`: after an allowed event (`allowed`), the
    /// tightest window (fewest events left; the shorter one on a tie); after a refusal, the
    /// window that refused (the longest wait). `None` when there is no window.
    pub fn status(&self, counted: Counted, state: RateState, allowed: bool, now: i64) -> Option<WindowStatus> {
        let statuses = self.with_tats(state).map(|(rate, tat)| WindowStatus {
            counted,
            limit: rate.limit(),
            period_ms: rate.period_ms(),
            remaining: if allowed { rate.remaining(tat, now) } else { 0 },
            reset_at_ms: tat.max(now),
            retry_after_ms: (!allowed).then(|| rate.wait_ms(tat, now)),
        });
        if allowed {
            statuses.min_by_key(|s| (s.remaining, s.period_ms))
        } else {
            // A refusal whose windows all have room again by now (another replica's state, read
            // a moment later) still names one window and a short wait.
            statuses.max_by_key(|s| (s.retry_after_ms, s.period_ms))
        }
    }
}

/// A subject's GCRA state: the TAT (unix ms) of its per-minute and per-hour window, 0 when
/// never used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateState {
    /// TAT of the per-minute window.
    pub minute_tat: i64,
    /// TAT of the per-hour window.
    pub hour_tat: i64,
}

/// One window as a client sees it: the `X-RateLimit-*` headers and, when it refused, the
/// 429's `Retry-After` and message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowStatus {
    /// What it counts.
    pub counted: Counted,
    /// Events allowed per period (`X-RateLimit-Limit`).
    pub limit: u64,
    /// The period, ms.
    pub period_ms: i64,
    /// Events that would pass now (`X-RateLimit-Remaining`).
    pub remaining: u64,
    /// Unix ms when the whole limit is available again (`X-RateLimit-Reset`, in seconds).
    pub reset_at_ms: i64,
    /// Set when this window refused: ms until one more event passes.
    pub retry_after_ms: Option<i64>,
}

impl WindowStatus {
    /// The window in words: "60 requests per minute", "1 generation per minute".
    pub fn describe(&self) -> String {
        let what = match (self.counted, self.limit) {
            (Counted::Requests, 1) => "request",
            (Counted::Requests, _) => "requests",
            (Counted::Generations, 1) => "generation",
            (Counted::Generations, _) => "generations",
        };
        let per = match self.period_ms {
            MINUTE_MS => "minute".to_string(),
            HOUR_MS => "hour".to_string(),
            ms => format!("{} s", ms / 1000),
        };
        format!("{} {what} per {per}", self.limit)
    }

    /// `X-RateLimit-Reset`: unix seconds, rounded up.
    pub fn reset_seconds(&self) -> i64 {
        self.reset_at_ms.div_euclid(1000) + i64::from(self.reset_at_ms.rem_euclid(1000) > 0)
    }

    /// `Retry-After`: whole seconds, rounded up, at least 1 (a refusal always waits).
    pub fn retry_after_seconds(&self) -> u64 {
        let ms = self.retry_after_ms.unwrap_or(0).max(1);
        u64::try_from((ms + 999) / 1000).unwrap_or(1)
    }

    /// The 429 `rate_limited` answer of a refusal by this window, for a caller of `tier`.
    pub fn refusal(&self, tier: &str) -> crate::error::AppError {
        let retry_after = self.retry_after_seconds();
        crate::error::AppError::Limited {
            code: crate::error::ErrorCode::RateLimited,
            message: format!("the {tier} tier allows {}; try again in {retry_after} s", self.describe()),
            retry_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    /// Take `n` events at `now` starting from `tat`; the TAT after those that passed and how
    /// many passed.
    fn burst(rate: Rate, mut tat: i64, now: i64, n: u64) -> (i64, u64) {
        let mut passed = 0;
        for _ in 0..n {
            if let Ok(next) = rate.take(tat, now) {
                tat = next;
                passed += 1;
            }
        }
        (tat, passed)
    }

    #[test]
    fn a_fresh_window_lets_exactly_the_limit_through_at_once() {
        for (limit, period) in [(1, MINUTE_MS), (3, MINUTE_MS), (7, MINUTE_MS), (60, MINUTE_MS), (100, HOUR_MS)] {
            let rate = Rate::new(limit, period);
            let (_, passed) = burst(rate, 0, NOW, limit + 5);
            assert_eq!(passed, limit, "{limit} per {period} ms");
        }
        // Rounding T up (7 per minute: 8572 ms) changes neither the burst nor exceeds the rate.
        let rate = Rate::per_minute(7);
        assert_eq!(rate.emission_ms(), 8572);
        assert!(rate.emission_ms() * 7 >= MINUTE_MS);
    }

    #[test]
    fn after_a_burst_one_event_passes_every_emission_interval() {
        let rate = Rate::per_minute(30);
        assert_eq!(rate.emission_ms(), 2000);
        let (tat, _) = burst(rate, 0, NOW, 30);
        assert_eq!(tat, NOW + 60_000);
        assert_eq!(rate.take(tat, NOW + 500), Err(1500));
        assert_eq!(rate.wait_ms(tat, NOW + 500), 1500);
        assert_eq!(rate.remaining(tat, NOW + 500), 0);
        let tat = rate.take(tat, NOW + 2000).expect("one interval later, one more passes");
        assert_eq!(rate.take(tat, NOW + 2000), Err(2000));
        // A quiet window fills up again: after a whole period every event is back.
        assert_eq!(rate.remaining(tat, NOW + 62_000), 30);
        assert_eq!(rate.remaining(tat, NOW + 40_000), 19, "20 came back in 40 s, one was taken");
    }

    #[test]
    fn remaining_counts_down_from_the_limit() {
        let rate = Rate::per_minute(3);
        assert_eq!(rate.remaining(0, NOW), 3);
        let mut tat = 0;
        for left in [2, 1, 0] {
            tat = rate.take(tat, NOW).unwrap();
            assert_eq!(rate.remaining(tat, NOW), left);
        }
        assert_eq!(rate.take(tat, NOW), Err(20_000));
    }

    #[test]
    fn huge_limits_and_zero_do_not_overflow() {
        let rate = Rate::new(u64::MAX, HOUR_MS);
        assert_eq!(rate.emission_ms(), 1);
        assert!(rate.take(NOW, NOW).is_ok());
        assert_eq!(Rate::per_minute(0).limit(), 1);
    }

    #[test]
    fn windows_are_taken_all_or_nothing() {
        let windows = RateWindows { minute: Some(Rate::per_minute(60)), hour: Some(Rate::per_hour(2)) };
        let mut state = RateState::default();
        for _ in 0..2 {
            state = windows.take(state, NOW).unwrap();
        }
        // The hour is used up: the minute window is not charged for the refused event.
        assert_eq!(windows.take(state, NOW), None);
        assert_eq!(Rate::per_minute(60).remaining(state.minute_tat, NOW), 58);
        let refused = windows.status(Counted::Requests, state, false, NOW).unwrap();
        assert_eq!(refused.describe(), "2 requests per hour");
        assert_eq!(refused.retry_after_ms, Some(1_800_000));
        assert_eq!(refused.retry_after_seconds(), 1800);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.reset_at_ms, NOW + HOUR_MS);
    }

    #[test]
    fn success_reports_the_tightest_window_and_refusal_the_refusing_one() {
        let windows = RateWindows { minute: Some(Rate::per_minute(3)), hour: Some(Rate::per_hour(100)) };
        let state = windows.take(RateState::default(), NOW).unwrap();
        let ok = windows.status(Counted::Requests, state, true, NOW).unwrap();
        assert_eq!((ok.limit, ok.remaining, ok.retry_after_ms), (3, 2, None));
        assert_eq!(ok.reset_seconds(), (NOW + 20_000) / 1000);
        let state = windows.take(windows.take(state, NOW).unwrap(), NOW).unwrap();
        let refused = windows.status(Counted::Requests, state, false, NOW + 1).unwrap();
        assert_eq!(refused.describe(), "3 requests per minute");
        assert_eq!(refused.retry_after_ms, Some(19_999));
        assert_eq!(refused.retry_after_seconds(), 20);
        let error = refused.refusal("free");
        assert_eq!(error.code(), crate::error::ErrorCode::RateLimited);
        assert!(error.to_string().contains("the free tier allows 3 requests per minute; try again in 20 s"), "{error}");
        // An empty set of windows has no status; a single one is its own tightest.
        assert_eq!(RateWindows::default().status(Counted::Requests, state, true, NOW), None);
        let gens = RateWindows { minute: Some(Rate::per_minute(10)), hour: None };
        let s = gens.status(Counted::Generations, gens.take(RateState::default(), NOW).unwrap(), true, NOW).unwrap();
        assert_eq!((s.describe().as_str(), s.remaining), ("10 generations per minute", 9));
        let one = WindowStatus { limit: 1, ..s };
        assert_eq!(one.describe(), "1 generation per minute");
    }

    #[test]
    fn seconds_round_up() {
        let mut s = WindowStatus {
            counted: Counted::Requests,
            limit: 1,
            period_ms: MINUTE_MS,
            remaining: 0,
            reset_at_ms: 1_000,
            retry_after_ms: Some(1),
        };
        assert_eq!((s.reset_seconds(), s.retry_after_seconds()), (1, 1));
        s.reset_at_ms = 1_001;
        s.retry_after_ms = Some(2_001);
        assert_eq!((s.reset_seconds(), s.retry_after_seconds()), (2, 3));
        s.retry_after_ms = Some(0);
        assert_eq!(s.retry_after_seconds(), 1);
    }
}
