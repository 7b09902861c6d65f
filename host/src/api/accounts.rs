//! Accounts over HTTP: registration, sign-in, profile, API keys, usage and credits, and the
//! operators' admin routes. Every answer is about the caller only; admin routes need the
//! `admin` tier (casbin policy) and, when set, a client inside `auth.admin_allowlist`.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::body::JsonBody;
use super::generations::ts;
use super::problem::ApiError;
use super::{Tag, app};
use crate::auth::Principal;
use crate::db::accounts::{KeyRow, UserRow};
use crate::service::App;
use crate::service::accounts::{AdminPatch, NewUser, ProfilePatch};

/// The accounts routes.
pub struct AccountsApi {
    /// Shared state (None only while generating the spec offline).
    pub app: Option<App>,
}

/// The admin routes.
pub struct AdminApi {
    /// Shared state (None only while generating the spec offline).
    pub app: Option<App>,
}

/// A user's preferences, used where a generation request is silent.
#[derive(Debug, Clone, Default, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Model used when a request names none, `provider/model`.
    pub default_model: Option<String>,
    /// Style template applied when a request names none.
    pub default_style: Option<String>,
    /// Aspect ratio (`W:H`) used when a request gives no size.
    pub default_aspect_ratio: Option<String>,
    /// Quality used when a request names none.
    pub default_quality: Option<String>,
}

/// A user account as its owner (or an admin) sees it.
#[derive(Debug, Clone, Object)]
pub struct User {
    /// `usr_…`.
    pub id: String,
    /// E-mail address (lower case).
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Avatar image URL.
    pub avatar_url: Option<String>,
    /// Tier: decides quotas, limits and allowed models.
    pub tier: String,
    /// True when an administrator disabled the account.
    pub disabled: bool,
    /// Preferences.
    pub settings: Settings,
    /// Credit balance.
    pub credits: i64,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

impl From<UserRow> for User {
    fn from(u: UserRow) -> Self {
        let settings = serde_json::from_str(&u.settings_json).unwrap_or_default();
        Self {
            id: u.id,
            email: u.email,
            name: u.name,
            avatar_url: u.avatar_url,
            tier: u.tier,
            disabled: u.disabled != 0,
            settings,
            credits: u.credits,
            created_at: ts(u.created_at),
        }
    }
}

/// Body of `POST /v1/auth/register`.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// E-mail address; stored lower case, unique.
    pub email: String,
    /// 8 to 256 characters; stored only as an argon2id hash.
    pub password: String,
    /// Display name, at most 100 characters.
    pub name: Option<String>,
    /// Required when the server's registration is by invitation.
    pub invite_code: Option<String>,
}

/// Body of `POST /v1/auth/login`.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// E-mail address.
    pub email: String,
    /// Password.
    pub password: String,
}

/// A session: send `Authorization: Bearer <token>` until `expires_at`.
#[derive(Debug, Clone, Object)]
pub struct Session {
    /// Session token (a JWT). It stops working at `expires_at` or when the password changes.
    pub token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// When the token expires.
    pub expires_at: DateTime<Utc>,
    /// The signed-in user.
    pub user: User,
}

/// Body of `PATCH /v1/me`: only the fields given change.
#[derive(Debug, Clone, Default, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    /// Display name (empty clears it).
    pub name: Option<String>,
    /// `https://` avatar URL (empty clears it).
    pub avatar_url: Option<String>,
    /// Settings to change, an object of `default_model`, `default_style`,
    /// `default_aspect_ratio` and `default_quality` (strings); a null value removes a setting.
    pub settings: Option<serde_json::Value>,
    /// New password (8 to 256 characters). Every session token issued before ends; API keys
    /// keep working.
    pub password: Option<String>,
    /// The current password, required with `password`.
    pub current_password: Option<String>,
}

/// Body of `POST /v1/keys`.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// A label to recognise the key by, 1 to 100 characters.
    pub name: String,
    /// When the key stops working (RFC 3339); default never.
    pub expires_at: Option<DateTime<Utc>>,
}

/// An API key (without its secret).
#[derive(Debug, Clone, Object)]
pub struct ApiKey {
    /// `key_…`: use it to delete the key.
    pub id: String,
    /// Label.
    pub name: String,
    /// The first 12 characters of the secret (`esk_` + 8).
    pub prefix: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops working; null: never.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was last used (to within a few seconds); null: never.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<KeyRow> for ApiKey {
    fn from(k: KeyRow) -> Self {
        Self {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            created_at: ts(k.created_at),
            expires_at: k.expires_at.map(ts),
            last_used_at: k.last_used_at.map(ts),
        }
    }
}

/// A new API key with its secret, shown only in this answer.
#[derive(Debug, Clone, Object)]
pub struct NewApiKey {
    /// The key.
    #[oai(flatten)]
    pub key: ApiKey,
    /// The secret (`esk_…`): send it as `Authorization: Bearer <secret>`. It cannot be shown
    /// again; store it now.
    pub secret: String,
}

/// A user's API keys.
#[derive(Debug, Clone, Object)]
pub struct ApiKeyList {
    /// Newest first.
    pub items: Vec<ApiKey>,
}

/// Images and requests of one UTC day.
#[derive(Debug, Clone, Object)]
pub struct UsageDay {
    /// The day, `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Images generated.
    pub images: i64,
    /// Requests made.
    pub requests: i64,
}

/// A name and how often it was used.
#[derive(Debug, Clone, Object)]
pub struct UsageCount {
    /// Style id or `provider/model`.
    pub name: String,
    /// Generations that used it.
    pub count: i64,
}

/// Limits of the caller's tier and what is left of them now. Null limits are unlimited.
#[derive(Debug, Clone, Object)]
pub struct QuotaStatus {
    /// Tier name.
    pub tier: String,
    /// Images allowed per UTC day.
    pub images_per_day: Option<u64>,
    /// Images reserved today (queued, running or made).
    pub images_used_today: i64,
    /// Images left today.
    pub images_remaining_today: Option<i64>,
    /// Requests allowed per hour: a sliding window (the whole limit at once, then one more
    /// every `3600 / limit` seconds), shared by every replica.
    pub requests_per_hour: Option<u64>,
    /// Requests made this clock hour.
    pub requests_this_hour: i64,
    /// Requests that would pass now under `requests_per_hour` (null: no limit).
    pub requests_remaining_this_hour: Option<u64>,
    /// Requests allowed per minute, the same way (one more every `60 / limit` seconds).
    pub requests_per_minute: Option<u64>,
    /// Requests that would pass now under `requests_per_minute` (null: no limit).
    pub requests_remaining_this_minute: Option<u64>,
    /// Generations that may be created per minute, the same way.
    pub generations_per_minute: Option<u64>,
    /// Generations that could be created now under `generations_per_minute` (null: no limit).
    pub generations_remaining_this_minute: Option<u64>,
    /// Generations allowed queued or running at once.
    pub max_concurrent: Option<u64>,
    /// Generations queued or running now.
    pub active_generations: i64,
}

/// `GET /v1/usage`.
#[derive(Debug, Clone, Object)]
pub struct Usage {
    /// `day`, `week` (last 7 days) or `month` (last 30 days).
    pub period: String,
    /// Start of the period (00:00 UTC).
    pub since: DateTime<Utc>,
    /// Images generated in the period.
    pub images: i64,
    /// Generations created in the period (any outcome).
    pub generations: i64,
    /// Requests made in the period.
    pub requests: i64,
    /// Per day, oldest first; days without activity are left out.
    pub by_day: Vec<UsageDay>,
    /// Most used styles, most first (at most 5).
    pub top_styles: Vec<UsageCount>,
    /// Most used models, most first (at most 5).
    pub top_models: Vec<UsageCount>,
    /// Mean seconds from start to finish of the succeeded generations; null when none.
    pub average_generation_seconds: Option<f64>,
    /// Quota used and remaining now.
    pub quota: QuotaStatus,
}

/// `GET /v1/credits`.
#[derive(Debug, Clone, Object)]
pub struct CreditsView {
    /// Balance.
    pub remaining: i64,
    /// Credits ever granted (refills and grants).
    pub total: i64,
    /// When the balance was last topped up; null: never.
    pub last_refill: Option<DateTime<Utc>>,
    /// Credits one image costs in the caller's tier; null: the tier does not use credits.
    pub per_image: Option<u64>,
    /// Balance topped up to at the start of each refill period; null: no refills.
    pub refill_amount: Option<u64>,
    /// `day`, `week` or `month`; null: no refills.
    pub refill_period: Option<String>,
}

/// A page of users.
#[derive(Debug, Clone, Object)]
pub struct UserList {
    /// Newest first.
    pub items: Vec<User>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Body of `PATCH /v1/admin/users/{id}`.
#[derive(Debug, Clone, Default, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminUpdateUserRequest {
    /// New tier (one defined under `[tiers]`).
    pub tier: Option<String>,
    /// Disable (its keys and sessions stop working at once) or enable the account.
    pub disabled: Option<bool>,
    /// New credit balance (0 or more).
    pub credits: Option<i64>,
}

/// Body of `POST /v1/admin/invites`.
#[derive(Debug, Clone, Default, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateInviteRequest {
    /// Tier of the user the invite makes; default `auth.default_tier`.
    pub tier: Option<String>,
    /// Days the code stays valid, 1 to 365 (default 7).
    pub expires_in_days: Option<u32>,
}

/// A new invite code, shown only in this answer.
#[derive(Debug, Clone, Object)]
pub struct Invite {
    /// The code (`inv_…`), for `invite_code` of `POST /v1/auth/register`. Usable once.
    pub code: String,
    /// When it stops being valid.
    pub expires_at: DateTime<Utc>,
}

/// Answer of a creating request.
#[derive(ApiResponse)]
pub enum Created<T: poem_openapi::types::ToJSON> {
    /// Created.
    #[oai(status = 201)]
    Created(Json<T>),
}

/// Answer of `DELETE /v1/keys/{id}`.
#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted; it stops working at once.
    #[oai(status = 204)]
    NoContent,
}

fn default_period() -> String {
    "day".into()
}

fn default_limit() -> u32 {
    20
}

fn session(user: UserRow, token: String, expires_at: i64) -> Session {
    Session { token, token_type: "Bearer".into(), expires_at: ts(expires_at), user: user.into() }
}

#[OpenApi(tag = "Tag::Accounts")]
impl AccountsApi {
    /// Register an account.
    ///
    /// Answers 201 with a session for the new user (tier `auth.default_tier`, or the
    /// invite's). 422 naming `email`, `password` or `invite_code`; 409 `conflict` when the
    /// address is taken; 403 when the server's registration is closed.
    #[oai(path = "/v1/auth/register", method = "post", operation_id = "register")]
    async fn register(&self, body: JsonBody<RegisterRequest>) -> Result<Created<Session>, ApiError> {
        let app = app(&self.app);
        let b = body.0;
        let new = NewUser {
            email: b.email,
            password: Some(b.password),
            name: b.name,
            tier: None,
            invite_code: b.invite_code,
        };
        let user = app.create_user(new, false).await?;
        let (token, expires_at) = app.auth.issue_session(&user)?;
        Ok(Created::Created(Json(session(user, token, expires_at))))
    }

    /// Sign in.
    ///
    /// Answers a session token (JWT) valid for `auth.session_ttl_seconds`. 401 `unauthorized`
    /// for a wrong address or password (the same answer for both); 429 `rate_limited` with
    /// `Retry-After` after too many attempts (per address and per client, per 15 minutes).
    #[oai(path = "/v1/auth/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        body: JsonBody<LoginRequest>,
        principal: Data<&Principal>,
    ) -> Result<Json<Session>, ApiError> {
        let (user, token, expires_at) = app(&self.app).login(&body.0.email, &body.0.password, principal.ip).await?;
        Ok(Json(session(user, token, expires_at)))
    }

    /// The signed-in user.
    ///
    /// 401 for callers without an account (anonymous, or let in by IP allowlist).
    #[oai(path = "/v1/me", method = "get", operation_id = "get_me")]
    async fn me(&self, principal: Data<&Principal>) -> Result<Json<User>, ApiError> {
        Ok(Json(app(&self.app).me(&principal).await?.into()))
    }

    /// Change your name, avatar, settings or password.
    ///
    /// Settings (`default_model`, `default_style`, `default_aspect_ratio`, `default_quality`)
    /// fill what a generation request leaves out. A password change needs `current_password`
    /// and ends every session (sign in again). 422 naming the field.
    #[oai(path = "/v1/me", method = "patch", operation_id = "update_me")]
    async fn update_me(
        &self,
        body: JsonBody<UpdateMeRequest>,
        principal: Data<&Principal>,
    ) -> Result<Json<User>, ApiError> {
        let b = body.0;
        let settings = match b.settings {
            None => None,
            Some(serde_json::Value::Object(map)) => Some(map),
            Some(_) => {
                return Err(
                    crate::error::AppError::field("settings", "must be an object of setting names and values").into()
                );
            }
        };
        let patch = ProfilePatch {
            name: b.name,
            avatar_url: b.avatar_url,
            settings,
            password: b.password,
            current_password: b.current_password,
        };
        Ok(Json(app(&self.app).update_me(&principal, patch).await?.into()))
    }

    /// Create an API key.
    ///
    /// The `secret` (`esk_…`) is in this answer only; the server keeps just its hash. 422
    /// naming `name` or `expires_at`.
    #[oai(path = "/v1/keys", method = "post", operation_id = "create_key")]
    async fn create_key(
        &self,
        body: JsonBody<CreateKeyRequest>,
        principal: Data<&Principal>,
    ) -> Result<Created<NewApiKey>, ApiError> {
        let app = app(&self.app);
        let user = principal.require_user()?;
        let expires_at = body.0.expires_at.map(|t| t.timestamp_millis());
        let (key, secret) = app.create_key(user, &body.0.name, expires_at).await?;
        Ok(Created::Created(Json(NewApiKey { key: key.into(), secret })))
    }

    /// List your API keys (never their secrets).
    #[oai(path = "/v1/keys", method = "get", operation_id = "list_keys")]
    async fn list_keys(&self, principal: Data<&Principal>) -> Result<Json<ApiKeyList>, ApiError> {
        let keys = app(&self.app).list_keys(&principal).await?;
        Ok(Json(ApiKeyList { items: keys.into_iter().map(ApiKey::from).collect() }))
    }

    /// Delete an API key; it stops working at once. 404 for a key that is not yours.
    #[oai(path = "/v1/keys/:id", method = "delete", operation_id = "delete_key")]
    async fn delete_key(&self, id: Path<String>, principal: Data<&Principal>) -> Result<Deleted, ApiError> {
        app(&self.app).delete_key(&principal, &id).await?;
        Ok(Deleted::NoContent)
    }

    /// Your usage and quota.
    ///
    /// `period`: `day` (today, UTC), `week` (the last 7 days) or `month` (the last 30 days).
    /// Images, generations and requests in the period, per day, the most used styles and
    /// models, the mean generation time, and the quota used and left now. Callers without an
    /// account see the usage of their address.
    #[oai(path = "/v1/usage", method = "get", operation_id = "get_usage")]
    async fn usage(
        &self,
        #[oai(default = "default_period")] period: Query<String>,
        principal: Data<&Principal>,
    ) -> Result<Json<Usage>, ApiError> {
        let u = app(&self.app).usage(&principal, &period.0).await?;
        let count = |v: Vec<(String, i64)>| v.into_iter().map(|(name, count)| UsageCount { name, count }).collect();
        let requests = u.report.days.iter().map(|d| d.requests).sum();
        Ok(Json(Usage {
            period: u.period,
            since: ts(u.since),
            images: u.report.images,
            generations: u.report.generations,
            requests,
            by_day: u
                .report
                .days
                .iter()
                .map(|d| UsageDay {
                    date: ts(d.day_start).format("%Y-%m-%d").to_string(),
                    images: d.images,
                    requests: d.requests,
                })
                .collect(),
            top_styles: count(u.report.top_styles),
            top_models: count(u.report.top_models),
            average_generation_seconds: u.report.average_generation_ms.map(|ms| (ms / 10.0).round() / 100.0),
            quota: QuotaStatus {
                tier: u.tier_name,
                images_per_day: u.tier.images_per_day,
                images_used_today: u.quota.images_today,
                images_remaining_today: u.tier.images_per_day.map(|l| (l as i64 - u.quota.images_today).max(0)),
                requests_per_hour: u.tier.requests_per_hour,
                requests_this_hour: u.requests_this_hour,
                requests_remaining_this_hour: u.rates.requests_this_hour,
                requests_per_minute: u.tier.requests_per_minute,
                requests_remaining_this_minute: u.rates.requests_this_minute,
                generations_per_minute: u.tier.generations_per_minute,
                generations_remaining_this_minute: u.rates.generations_this_minute,
                max_concurrent: u.tier.max_concurrent,
                active_generations: u.quota.active,
            },
        }))
    }

    /// Your credits: balance, total granted, last refill and what an image costs.
    #[oai(path = "/v1/credits", method = "get", operation_id = "get_credits")]
    async fn credits(&self, principal: Data<&Principal>) -> Result<Json<CreditsView>, ApiError> {
        let c = app(&self.app).credits(&principal).await?;
        Ok(Json(CreditsView {
            remaining: c.remaining,
            total: c.total,
            last_refill: c.last_refill.map(ts),
            per_image: c.per_image,
            refill_amount: c.refill.map(|(a, _)| a),
            refill_period: c.refill.map(|(_, p)| format!("{p:?}").to_lowercase()),
        }))
    }
}

#[OpenApi(tag = "Tag::Admin")]
impl AdminApi {
    /// List users, newest first (admin).
    ///
    /// `limit` 1–100 (default 20); pass `next_cursor` back as `cursor`.
    #[oai(path = "/v1/admin/users", method = "get", operation_id = "admin_list_users")]
    async fn list_users(
        &self,
        #[oai(default = "default_limit")] limit: Query<u32>,
        cursor: Query<Option<String>>,
    ) -> Result<Json<UserList>, ApiError> {
        let (users, next) = app(&self.app).list_users(cursor.0, limit.0).await?;
        Ok(Json(UserList { items: users.into_iter().map(User::from).collect(), next_cursor: next }))
    }

    /// Change a user's tier, status or credits (admin). Effective at once. 404 for an unknown
    /// user; 422 naming `tier` or `credits`.
    #[oai(path = "/v1/admin/users/:id", method = "patch", operation_id = "admin_update_user")]
    async fn update_user(
        &self,
        id: Path<String>,
        body: JsonBody<AdminUpdateUserRequest>,
    ) -> Result<Json<User>, ApiError> {
        let b = body.0;
        let patch = AdminPatch { tier: b.tier, disabled: b.disabled, credits: b.credits };
        Ok(Json(app(&self.app).admin_update_user(&id, patch).await?.into()))
    }

    /// Create an invite code (admin), for servers whose registration is by invitation.
    #[oai(path = "/v1/admin/invites", method = "post", operation_id = "admin_create_invite")]
    async fn create_invite(
        &self,
        body: JsonBody<CreateInviteRequest>,
        principal: Data<&Principal>,
    ) -> Result<Created<Invite>, ApiError> {
        let b = body.0;
        let (code, expires_at) =
            app(&self.app).create_invite(&principal, b.tier, b.expires_in_days.unwrap_or(7)).await?;
        Ok(Created::Created(Json(Invite { code, expires_at: ts(expires_at) })))
    }
}
