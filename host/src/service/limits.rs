//! Rate limits per quota subject, shared by replicas: a tier's `requests_per_minute` and
//! `requests_per_hour` for every counted request, and `generations_per_minute` for creating
//! generations (taken at admission, see [`App::create_generation`]). Each is a GCRA window
//! ([`crate::auth::gcra`]) whose state lives in the database.

use super::{App, now_ms};
use crate::auth::gcra::{self, Counted, Rate, RateWindows, WindowStatus};
use crate::auth::{self, Principal};
use crate::config::TierConfig;
use crate::error::AppResult;

/// The answer to [`App::take_request`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateCheck {
    /// The request may go on.
    pub allowed: bool,
    /// The tightest window when allowed; the window that refused otherwise.
    pub window: WindowStatus,
}

/// The request windows of a tier.
pub fn request_windows(tier: &TierConfig) -> RateWindows {
    RateWindows {
        minute: tier.requests_per_minute.map(Rate::per_minute),
        hour: tier.requests_per_hour.map(Rate::per_hour),
    }
}

/// The generation windows of a tier.
pub fn generation_windows(tier: &TierConfig) -> RateWindows {
    RateWindows { minute: tier.generations_per_minute.map(Rate::per_minute), hour: None }
}

/// What `principal`'s windows would let through now, without taking anything (None: the
/// tier has no such limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateStanding {
    /// Requests under `requests_per_minute`.
    pub requests_this_minute: Option<u64>,
    /// Requests under `requests_per_hour`.
    pub requests_this_hour: Option<u64>,
    /// Generations under `generations_per_minute`.
    pub generations_this_minute: Option<u64>,
}

impl App {
    /// Take one request of `principal` from its tier's request windows (per minute, per
    /// hour), in one database statement shared by every replica. `None` when the tier has
    /// no request limit.
    pub async fn take_request(&self, principal: &Principal) -> AppResult<Option<RateCheck>> {
        let windows = request_windows(auth::tier(&self.config, &principal.tier));
        if windows.is_empty() {
            return Ok(None);
        }
        let now = now_ms();
        let taken = self.db.take_rate(&gcra::requests_subject(&principal.quota_subject()), windows, now).await?;
        Ok(windows
            .status(Counted::Requests, taken.state, taken.allowed, now)
            .map(|window| RateCheck { allowed: taken.allowed, window }))
    }

    /// How the windows of `principal` stand now (for `GET /v1/usage`).
    pub async fn rate_standing(&self, principal: &Principal) -> AppResult<RateStanding> {
        let tier = auth::tier(&self.config, &principal.tier);
        let now = now_ms();
        let left = |rate: Option<Rate>, tat: i64| rate.map(|r| r.remaining(tat, now));
        let requests = request_windows(tier);
        let generations = generation_windows(tier);
        let mut standing = RateStanding::default();
        if !requests.is_empty() {
            let state = self.db.rate_state(&gcra::requests_subject(&principal.quota_subject())).await?;
            standing.requests_this_minute = left(requests.minute, state.minute_tat);
            standing.requests_this_hour = left(requests.hour, state.hour_tat);
        }
        if !generations.is_empty() {
            let state = self.db.rate_state(&gcra::generations_subject(&principal.quota_subject())).await?;
            standing.generations_this_minute = left(generations.minute, state.minute_tat);
        }
        Ok(standing)
    }
}
