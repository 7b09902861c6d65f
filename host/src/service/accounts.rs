//! Accounts: registration, sign-in, profile and settings, API keys, credits, usage, and the
//! operator's user administration (API and CLI).

use serde_json::{Map, Value};

use super::{App, now_ms};
use crate::auth::{self, Principal};
use crate::config::{RefillPeriod, Registration, TierConfig};
use crate::db::accounts::{KeyRow, QuotaState, UsageReport, UserRow};
use crate::error::{AppError, AppResult, ErrorCode};

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 8;
/// Longest password accepted (argon2 hashes any length; this bounds the work per request).
pub const MAX_PASSWORD: usize = 256;
/// Settings keys a user may set, each a string of at most 200 characters.
pub const SETTINGS: &[&str] = &["default_model", "default_style", "default_aspect_ratio", "default_quality"];

/// A sign-up.
#[derive(Clone, Debug)]
pub struct NewUser {
    /// E-mail address (stored lower-case).
    pub email: String,
    /// 8..=256 characters.
    pub password: Option<String>,
    /// Display name, ≤ 100 characters.
    pub name: Option<String>,
    /// Tier (operators only; sign-ups get `auth.default_tier` or the invite's).
    pub tier: Option<String>,
    /// Invite code, when registration is by invitation.
    pub invite_code: Option<String>,
}

/// Changes to one's own profile.
#[derive(Clone, Debug, Default)]
pub struct ProfilePatch {
    /// New display name (empty clears it).
    pub name: Option<String>,
    /// New avatar URL, `https://…` (empty clears it).
    pub avatar_url: Option<String>,
    /// Settings to set (a null value removes one).
    pub settings: Option<Map<String, Value>>,
    /// New password; needs `current_password` when the account has one.
    pub password: Option<String>,
    /// The current password.
    pub current_password: Option<String>,
}

/// An operator's change to a user.
#[derive(Clone, Debug, Default)]
pub struct AdminPatch {
    /// New tier.
    pub tier: Option<String>,
    /// Disable (true) or enable.
    pub disabled: Option<bool>,
    /// New credit balance.
    pub credits: Option<i64>,
}

/// A user's credits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credits {
    /// Balance now.
    pub remaining: i64,
    /// Credits ever granted.
    pub total: i64,
    /// Unix ms of the last refill.
    pub last_refill: Option<i64>,
    /// Cost of one image in the user's tier (None: the tier does not use credits).
    pub per_image: Option<u64>,
    /// Balance topped up to at each refill, and how often.
    pub refill: Option<(u64, RefillPeriod)>,
}

/// A usage report with the quota state.
#[derive(Clone, Debug)]
pub struct Usage {
    /// `day`, `week` or `month`.
    pub period: String,
    /// Unix ms the period started.
    pub since: i64,
    /// What was used.
    pub report: UsageReport,
    /// Quota state now.
    pub quota: QuotaState,
    /// The tier's limits.
    pub tier: TierConfig,
    /// The tier name.
    pub tier_name: String,
    /// Requests counted this clock hour.
    pub requests_this_hour: i64,
    /// What the request and generation windows let through now.
    pub rates: super::limits::RateStanding,
}

fn validate_email(email: &str) -> AppResult<String> {
    let email = email.trim().to_lowercase();
    let ok = (3..=254).contains(&email.len())
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.starts_with('.'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok { Ok(email) } else { Err(AppError::field("email", "must be an e-mail address such as ada@example.com")) }
}

fn validate_password(field: &str, password: &str) -> AppResult<()> {
    let n = password.chars().count();
    if (MIN_PASSWORD..=MAX_PASSWORD).contains(&n) {
        Ok(())
    } else {
        Err(AppError::field(field, format!("must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")))
    }
}

fn validate_name(name: &str) -> AppResult<Option<String>> {
    let name = name.trim();
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::field("name", "must be at most 100 printable characters"));
    }
    Ok((!name.is_empty()).then(|| name.to_string()))
}

/// argon2 runs at most one per core at a time (each takes 19 MiB and a core for tens of ms):
/// a burst of sign-ins waits here instead of filling the blocking pool and the memory.
static HASHING: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get))
});

async fn hash(password: String) -> AppResult<String> {
    let _permit = HASHING.acquire().await.map_err(|e| AppError::Internal(e.into()))?;
    tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("password hashing task: {e}")))?
}

async fn verify(hash: String, password: String) -> bool {
    let Ok(_permit) = HASHING.acquire().await else { return false };
    tokio::task::spawn_blocking(move || auth::verify_password(&hash, &password)).await.unwrap_or(false)
}

/// Start of the refill period containing `now` (unix ms, UTC).
pub fn period_start(period: RefillPeriod, now: i64) -> i64 {
    use chrono::{Datelike, TimeZone, Utc};
    let t = Utc.timestamp_millis_opt(now).single().unwrap_or_default();
    let day = t.date_naive();
    let start = match period {
        RefillPeriod::Day => day,
        RefillPeriod::Week => day - chrono::Days::new(u64::from(day.weekday().num_days_from_monday())),
        RefillPeriod::Month => day.with_day(1).unwrap_or(day),
    };
    start.and_hms_opt(0, 0, 0).map_or(now, |d| d.and_utc().timestamp_millis())
}

impl App {
    /// Drop `user_id`'s cached credentials here and, where the database relays signals
    /// (PostgreSQL), on every other replica, so a deleted key, a new password, a new tier or a
    /// disabled account holds from the next request everywhere. (SQLite processes sharing a
    /// file notice within [`auth::CACHE_TTL`].)
    pub async fn forget_user_everywhere(&self, user_id: &str) {
        self.auth.forget_user(user_id);
        let signal = super::ReplicaSignal::ForgetUser { user_id: user_id.to_string(), origin: self.replica_id.clone() };
        if let Err(e) = self.signal(&signal).await {
            tracing::warn!(error = ?e, "telling other replicas about a credential change failed; their caches expire within 5 s");
        }
    }

    /// Create a user: by sign-up (`operator` false: `auth.registration` applies, the tier is
    /// `auth.default_tier` or the invite's) or by an operator (`easel user create`, any tier).
    /// 409 `conflict` when the e-mail address is taken; 403 when registration is closed;
    /// 422 naming `invite_code` for a missing, used or expired invite.
    pub async fn create_user(&self, new: NewUser, operator: bool) -> AppResult<UserRow> {
        let registration = if operator { Registration::Open } else { self.config.auth.registration };
        if registration == Registration::Closed {
            return Err(AppError::coded(ErrorCode::Forbidden, "registration is closed; ask an administrator"));
        }
        let email = validate_email(&new.email)?;
        let name = match &new.name {
            Some(n) => validate_name(n)?,
            None => None,
        };
        let password_hash = match new.password {
            Some(p) => {
                validate_password("password", &p)?;
                Some(hash(p).await?)
            }
            None if operator => None,
            None => return Err(AppError::field("password", "is required")),
        };
        let tier = match (&new.tier, operator) {
            (Some(t), true) => t.clone(),
            _ => self.config.auth.default_tier.clone(),
        };
        if !self.config.tiers.contains_key(&tier) {
            return Err(AppError::field("tier", format!("{tier:?} is not a tier defined under [tiers]")));
        }
        let now = now_ms();
        let user = UserRow { name, password_hash, ..UserRow::new(&email, &tier, now) };
        // (A closed registration returned above; operators register as if it were open.)
        let created = if registration == Registration::Invite {
            let code = new.invite_code.as_deref().filter(|c| !c.is_empty()).ok_or_else(|| {
                AppError::field("invite_code", "registration is by invitation: an invite code is required")
            })?;
            self.db
                .create_user_with_invite(&user, &auth::secret_hash(code), now)
                .await?
                .ok_or_else(|| AppError::field("invite_code", "is unknown, already used or expired"))?
        } else {
            self.db.create_user(&user).await?
        };
        if !created {
            return Err(AppError::coded(ErrorCode::Conflict, "an account with this e-mail address exists"));
        }
        let user = self.db.user_by_id(&user.id).await?.ok_or_else(|| AppError::not_found("user", &user.id))?;
        tracing::info!(user_id = %user.id, tier = %user.tier, "user created");
        Ok(user)
    }

    /// Sign in with e-mail and password: a session token and when it expires (unix ms).
    ///
    /// A wrong address and a wrong password give the same 401 after the same work (a decoy
    /// hash is verified for unknown addresses). Attempts are limited per address
    /// (`auth.login_attempts` per 15 minutes) and per client address (5 times that): 429.
    pub async fn login(&self, email: &str, password: &str, ip: std::net::IpAddr) -> AppResult<(UserRow, String, i64)> {
        let email = validate_email(email)?;
        let now = now_ms();
        let window = now - now % 900_000;
        let limit = i64::from(self.config.auth.login_attempts);
        let retry_after = ((window + 900_000 - now) / 1000).max(1) as u64;
        // Failed attempts are counted, per address and per client; reaching either limit
        // stops further attempts (even right ones) until the window ends.
        let subjects = [
            (format!("login email {}", auth::secret_hash(&email)), limit),
            (format!("login ip {}", auth::address_subject(ip)), limit * 5),
        ];
        for (subject, limit) in &subjects {
            if self.db.counted(subject, window).await? >= *limit {
                return Err(AppError::Limited {
                    code: ErrorCode::RateLimited,
                    message: format!("too many failed sign-in attempts; try again in {retry_after} s"),
                    retry_after,
                });
            }
        }
        let user = self.db.user_by_email(&email).await?;
        let stored = user.as_ref().and_then(|u| u.password_hash.clone()).unwrap_or_else(|| auth::decoy_hash().into());
        // An over-long password cannot match (none is stored); it still costs one verification.
        let attempt = if password.chars().count() > MAX_PASSWORD { String::new() } else { password.to_string() };
        let matches = verify(stored, attempt).await && password.chars().count() <= MAX_PASSWORD;
        let user = match user {
            Some(u) if matches && u.password_hash.is_some() => u,
            _ => {
                for (subject, limit) in &subjects {
                    self.db.count_event(subject, window, *limit).await?;
                }
                return Err(AppError::coded(ErrorCode::Unauthorized, "the e-mail address or password is wrong"));
            }
        };
        if user.disabled != 0 {
            return Err(AppError::coded(ErrorCode::Forbidden, "this account is disabled"));
        }
        let (token, expires_at) = self.auth.issue_session(&user)?;
        Ok((user, token, expires_at))
    }

    /// The signed-in user.
    pub async fn me(&self, principal: &Principal) -> AppResult<UserRow> {
        let id = principal.require_user()?;
        self.db.user_by_id(id).await?.ok_or_else(|| AppError::not_found("user", id))
    }

    /// Change one's name, avatar, settings or password. A new password ends every session
    /// (tokens issued before it are refused); API keys keep working.
    pub async fn update_me(&self, principal: &Principal, patch: ProfilePatch) -> AppResult<UserRow> {
        let mut user = self.me(principal).await?;
        if let Some(name) = &patch.name {
            user.name = validate_name(name)?;
        }
        if let Some(url) = &patch.avatar_url {
            let url = url.trim();
            if url.is_empty() {
                user.avatar_url = None;
            } else if url.len() > 2048 || !url.starts_with("https://") || url.chars().any(char::is_whitespace) {
                return Err(AppError::field("avatar_url", "must be an https:// URL of at most 2048 characters"));
            } else {
                user.avatar_url = Some(url.to_string());
            }
        }
        if let Some(changes) = patch.settings {
            let mut settings: Map<String, Value> = serde_json::from_str(&user.settings_json).unwrap_or_default();
            for (key, value) in changes {
                if !SETTINGS.contains(&key.as_str()) {
                    return Err(AppError::field(
                        format!("settings.{key}"),
                        format!("is not a setting; use {}", SETTINGS.join(", ")),
                    ));
                }
                match value {
                    Value::Null => {
                        settings.remove(&key);
                    }
                    Value::String(v) if v.chars().count() <= 200 => {
                        settings.insert(key, Value::String(v));
                    }
                    _ => {
                        return Err(AppError::field(
                            format!("settings.{key}"),
                            "must be a string of at most 200 characters, or null",
                        ));
                    }
                }
            }
            user.settings_json = Value::Object(settings).to_string();
        }
        if let Some(password) = &patch.password {
            validate_password("password", password)?;
            // Setting a first password on a key-only account needs a session, not just a key.
            let current = user.password_hash.clone();
            if current.is_none() && principal.key_id.is_some() {
                return Err(AppError::coded(
                    ErrorCode::Forbidden,
                    "setting a password needs a session token, not an API key",
                ));
            }
            if let Some(current) = current {
                let given = patch.current_password.clone().unwrap_or_default();
                if !verify(current, given).await {
                    return Err(AppError::field("current_password", "is wrong"));
                }
            }
        }
        user.updated_at = now_ms();
        self.db.update_profile(&user).await?;
        if let Some(password) = patch.password {
            let hashed = hash(password).await?;
            if !self.db.change_password(&user.id, &hashed, user.token_version, user.updated_at).await? {
                return Err(AppError::coded(
                    ErrorCode::Conflict,
                    "the password was changed by another request meanwhile; sign in again",
                ));
            }
        }
        self.forget_user_everywhere(&user.id).await;
        self.me(principal).await
    }

    /// Create an API key for `user_id`: the row and the secret (shown this once). `expires_at`
    /// (unix ms) must be in the future.
    pub async fn create_key(&self, user_id: &str, name: &str, expires_at: Option<i64>) -> AppResult<(KeyRow, String)> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(AppError::field("name", "must be 1 to 100 printable characters"));
        }
        if let Some(t) = expires_at
            && t <= now_ms()
        {
            return Err(AppError::field("expires_at", "must be in the future"));
        }
        let secret = auth::new_key_secret();
        let key = KeyRow::new(user_id, name, &secret, expires_at, now_ms());
        self.db.create_key(&key).await?;
        tracing::info!(key_id = %key.id, user_id, "API key created");
        Ok((key, secret))
    }

    /// The caller's API keys, newest first; 401 for callers without an account.
    pub async fn list_keys(&self, principal: &Principal) -> AppResult<Vec<KeyRow>> {
        self.db.list_keys(principal.require_user()?).await
    }

    /// Delete one of the caller's keys (admins: anyone's); it stops working at once. 404 when
    /// there is no such key of theirs.
    pub async fn delete_key(&self, principal: &Principal, id: &str) -> AppResult<()> {
        let user = principal.require_user()?;
        let owner = (!principal.is_admin()).then_some(user);
        let key_user = self.db.delete_key(owner, id).await?.ok_or_else(|| AppError::not_found("key", id))?;
        self.forget_user_everywhere(&key_user).await;
        tracing::info!(key_id = %id, "API key deleted");
        Ok(())
    }

    /// Revoke any user's key (operators: `easel key revoke`); returns the id of its user.
    /// It stops working at once on every replica. 404 when there is no such key.
    pub async fn revoke_key(&self, id: &str) -> AppResult<String> {
        let key_user = self.db.delete_key(None, id).await?.ok_or_else(|| AppError::not_found("key", id))?;
        self.forget_user_everywhere(&key_user).await;
        tracing::info!(key_id = %id, user_id = %key_user, "API key revoked by an operator");
        Ok(key_user)
    }

    /// Top a user's credits up when a refill period began since the last refill; true when
    /// it did.
    pub async fn refill_credits(&self, user: &UserRow, tier: &TierConfig) -> AppResult<bool> {
        let Some(amount) = tier.credits_refill else { return Ok(false) };
        let now = now_ms();
        self.db.refill_credits(&user.id, amount as i64, period_start(tier.credits_refill_period, now), now).await
    }

    /// The caller's credits (refilled first when due).
    pub async fn credits(&self, principal: &Principal) -> AppResult<Credits> {
        let mut user = self.me(principal).await?;
        let tier = auth::tier(&self.config, &user.tier).clone();
        if self.refill_credits(&user, &tier).await? {
            user = self.me(principal).await?;
        }
        Ok(Credits {
            remaining: user.credits,
            total: user.credits_total,
            last_refill: user.credits_refilled_at,
            per_image: tier.credits_per_image,
            refill: tier.credits_refill.map(|a| (a, tier.credits_refill_period)),
        })
    }

    /// The caller's usage over the current `period` (`day`, `week`: the last 7 days, `month`:
    /// the last 30 days) and their quota state now.
    pub async fn usage(&self, principal: &Principal, period: &str) -> AppResult<Usage> {
        let now = now_ms();
        let today = now - now.rem_euclid(86_400_000);
        let since = match period {
            "day" => today,
            "week" => today - 6 * 86_400_000,
            "month" => today - 29 * 86_400_000,
            other => return Err(AppError::field("period", format!("must be day, week or month; got {other:?}"))),
        };
        let subject = principal.quota_subject();
        let report = self.db.usage(&principal.owner, &subject, since).await?;
        let quota = self.db.quota_state(&subject, today).await?;
        let hour = now - now % 3_600_000;
        let requests_this_hour = self.db.counted(&crate::auth::gcra::requests_subject(&subject), hour).await?;
        let rates = self.rate_standing(principal).await?;
        Ok(Usage {
            period: period.to_string(),
            since,
            report,
            quota,
            tier: auth::tier(&self.config, &principal.tier).clone(),
            tier_name: principal.tier.clone(),
            requests_this_hour,
            rates,
        })
    }

    /// Users, newest first (admin).
    pub async fn list_users(&self, cursor: Option<String>, limit: u32) -> AppResult<(Vec<UserRow>, Option<String>)> {
        if !(1..=100).contains(&limit) {
            return Err(AppError::field("limit", format!("must be 1 to 100, got {limit}")));
        }
        let mut users = self.db.list_users(cursor.as_deref(), limit).await?;
        let next = if users.len() > limit as usize {
            users.truncate(limit as usize);
            users.last().map(|u| u.id.clone())
        } else {
            None
        };
        Ok((users, next))
    }

    /// Change a user's tier, status or credits (admin, or the CLI). Takes effect at once:
    /// the user's cached credentials are dropped.
    pub async fn admin_update_user(&self, id: &str, patch: AdminPatch) -> AppResult<UserRow> {
        let user = self.db.user_by_id(id).await?.ok_or_else(|| AppError::not_found("user", id))?;
        if let Some(tier) = &patch.tier
            && !self.config.tiers.contains_key(tier)
        {
            return Err(AppError::field("tier", format!("{tier:?} is not a tier defined under [tiers]")));
        }
        if let Some(credits) = patch.credits {
            if credits < 0 {
                return Err(AppError::field("credits", "must be 0 or more"));
            }
            self.db.set_credits(id, credits).await?;
        }
        self.db.admin_set(id, patch.tier.as_deref(), patch.disabled.map(i64::from), now_ms()).await?;
        self.forget_user_everywhere(id).await;
        let user = self.db.user_by_id(id).await?.ok_or_else(|| AppError::not_found("user", &user.id))?;
        tracing::info!(user_id = %id, tier = %user.tier, disabled = user.disabled, "user changed by an operator");
        Ok(user)
    }

    /// A new invite code (shown once) valid for `days` (1..=365), making users of `tier`
    /// (None: `auth.default_tier`).
    pub async fn create_invite(
        &self,
        principal: &Principal,
        tier: Option<String>,
        days: u32,
    ) -> AppResult<(String, i64)> {
        if !(1..=365).contains(&days) {
            return Err(AppError::field("expires_in_days", "must be 1 to 365"));
        }
        if let Some(t) = &tier
            && !self.config.tiers.contains_key(t)
        {
            return Err(AppError::field("tier", format!("{t:?} is not a tier defined under [tiers]")));
        }
        let code = format!("inv_{}", auth::random_token(24));
        let now = now_ms();
        let expires_at = now + i64::from(days) * 86_400_000;
        self.db.create_invite(&auth::secret_hash(&code), tier.as_deref(), &principal.owner, now, expires_at).await?;
        Ok((code, expires_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refill_periods_start_at_utc_boundaries() {
        // 2026-11-25 (a Wednesday) 13:45:10 UTC.
        let now = 1_795_614_310_000;
        assert_eq!(period_start(RefillPeriod::Day, now), 1_795_564_800_000);
        assert_eq!(period_start(RefillPeriod::Week, now), 1_795_392_000_000);
        assert_eq!(period_start(RefillPeriod::Month, now), 1_793_491_200_000);
    }

    #[test]
    fn emails_and_passwords_are_checked() {
        assert_eq!(validate_email(" Ada@Example.com ").unwrap(), "ada@example.com");
        assert!(validate_email("ada").is_err());
        assert!(validate_email("ada@localhost").is_err());
        assert!(validate_password("password", "short").is_err());
        assert!(validate_password("password", "long enough").is_ok());
    }
}
