//! Authentication: who is calling. A request carries an API key (`esk_…`) or a session token
//! (JWT, HS256) as `Authorization: Bearer`; without one, the caller's address may match an IP
//! allowlist entry (a tier for a whole network), else the caller is `anonymous`.
//!
//! Keys are random (40 characters after `esk_`) and stored as their sha256; passwords as
//! argon2id PHC strings. Verified credentials are cached for [`CACHE_TTL`] by the sha256 of
//! the token, so a warm request costs a hash and a map lookup; revoking a key, changing a
//! password or a tier, or disabling a user drops that user's entries at once.

pub mod gcra;
pub mod policy;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{Config, TierConfig};
use crate::db::Database;
use crate::db::accounts::UserRow;
use crate::error::{AppError, AppResult, ErrorCode};

/// How long a verified credential is trusted without asking the database again.
pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// Prefix of every API key secret.
pub const KEY_PREFIX: &str = "esk_";

/// Who a request acts as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// Owner id of what this caller creates and may see: `usr_…` for users, `net_<tier>` for
    /// callers let in by an IP allowlist entry, `anonymous` otherwise.
    pub owner: String,
    /// Tier name.
    pub tier: String,
    /// The user, when authenticated by key or session.
    pub user_id: Option<String>,
    /// The API key used, if any.
    pub key_id: Option<String>,
    /// The client's address (after trusted proxies).
    pub ip: IpAddr,
}

impl Principal {
    /// The server itself (background work): sees everything.
    pub fn system() -> Self {
        Self {
            owner: "system".into(),
            tier: "admin".into(),
            user_id: None,
            key_id: None,
            ip: IpAddr::from([127, 0, 0, 1]),
        }
    }

    /// Admins see and change every owner's resources.
    pub fn is_admin(&self) -> bool {
        self.tier == "admin"
    }

    /// May this caller see a resource owned by `owner`? (No: answer 404, not 403.)
    pub fn sees(&self, owner: Option<&str>) -> bool {
        self.is_admin() || owner == Some(self.owner.as_str())
    }

    /// The owner filter of listings: None for admins (everyone's).
    pub fn owner_filter(&self) -> Option<String> {
        (!self.is_admin()).then(|| self.owner.clone())
    }

    /// Whose quotas this caller uses: the user, else the client address.
    pub fn quota_subject(&self) -> String {
        match &self.user_id {
            Some(id) => id.clone(),
            None => format!("ip {}", address_subject(self.ip)),
        }
    }

    /// The user id, or 401 for callers without an account.
    pub fn require_user(&self) -> AppResult<&str> {
        self.user_id.as_deref().ok_or_else(|| {
            AppError::coded(
                ErrorCode::Unauthorized,
                "this operation needs an account: send `Authorization: Bearer <API key or session token>`",
            )
        })
    }
}

/// Claims of a session token.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// User id.
    sub: String,
    /// Expiry, unix seconds.
    exp: i64,
    /// Issued at, unix seconds.
    iat: i64,
    /// The user's `token_version` when issued.
    ver: i64,
}

/// A verified credential, cached.
#[derive(Clone)]
struct Verified {
    user: UserRow,
    key_id: Option<String>,
    key_expires_at: Option<i64>,
    at: Instant,
}

/// Credential checks, the IP allowlist and the policy.
pub struct Auth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    session_ttl: i64,
    cache: Mutex<HashMap<[u8; 32], Verified>>,
    /// Bumped by every [`Auth::forget_user`]: a lookup that started before a forget does not
    /// cache what it read.
    epoch: std::sync::atomic::AtomicU64,
    allowlist: Vec<(String, String)>,
    trusted_proxies: Vec<String>,
    admin_allowlist: Vec<String>,
    /// The authorization policy in force.
    pub policies: Arc<policy::Policies>,
    /// Route templates, to name the object of a request.
    pub routes: policy::Routes,
}

impl Auth {
    /// Set up from the configuration: the session signing key (configured, or shared through
    /// the database), the allowlists and the policy.
    pub async fn new(config: &Config, db: &dyn Database) -> anyhow::Result<Self> {
        let secret = match &config.auth.jwt_secret {
            Some(s) => s.expose().to_string(),
            None => db.server_secret("jwt_hs256", &random_token(64), crate::service::now_ms()).await?,
        };
        let policies = policy::Policies::load(config).await?;
        let spec = crate::api::spec_json();
        let routes = policy::Routes::from_spec(&spec, &["/v1/ws", "/metrics", "/openapi.json", "/docs"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            session_ttl: config.auth.session_ttl_seconds as i64,
            cache: Mutex::default(),
            epoch: Default::default(),
            allowlist: config.auth.ip_allowlist.iter().map(|r| (r.cidr.clone(), r.tier.clone())).collect(),
            trusted_proxies: config.auth.trusted_proxies.clone(),
            admin_allowlist: config.auth.admin_allowlist.clone(),
            policies,
            routes,
        })
    }

    /// The caller of a request: by its bearer token when it has one (a bad token is 401 and
    /// never falls back to the address), else by its address.
    pub async fn authenticate(&self, db: &dyn Database, token: Option<&str>, ip: IpAddr) -> AppResult<Principal> {
        let Some(token) = token else {
            return Ok(match self.network_tier(ip) {
                Some(tier) => Principal { owner: format!("net_{tier}"), tier, user_id: None, key_id: None, ip },
                None => {
                    Principal { owner: "anonymous".into(), tier: "anonymous".into(), user_id: None, key_id: None, ip }
                }
            });
        };
        let verified = self.verify(db, token).await?;
        if verified.user.disabled != 0 {
            return Err(AppError::coded(ErrorCode::Forbidden, "this account is disabled"));
        }
        Ok(Principal {
            owner: verified.user.id.clone(),
            tier: verified.user.tier.clone(),
            user_id: Some(verified.user.id),
            key_id: verified.key_id,
            ip,
        })
    }

    async fn verify(&self, db: &dyn Database, token: &str) -> AppResult<Verified> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = crate::service::now_ms();
        let cached = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&digest).cloned();
        if let Some(v) = cached
            && v.at.elapsed() < CACHE_TTL
        {
            if v.key_expires_at.is_some_and(|t| t <= now) {
                return Err(invalid_credentials());
            }
            return Ok(v);
        }
        // Stamped before reading, so an entry never outlives what it read by more than CACHE_TTL.
        let (read_at, epoch) = (Instant::now(), self.epoch.load(std::sync::atomic::Ordering::SeqCst));
        let verified = if token.starts_with(KEY_PREFIX) {
            let (key, user) = db.key_by_hash(&hex::encode(digest)).await?.ok_or_else(invalid_credentials)?;
            if key.expires_at.is_some_and(|t| t <= now) {
                return Err(invalid_credentials());
            }
            // Recorded when the cache is refilled: "last used" is exact to within CACHE_TTL.
            if let Err(e) = db.touch_key(&key.id, now).await {
                tracing::warn!(error = ?e, key_id = %key.id, "recording the key's last use failed");
            }
            Verified { user, key_id: Some(key.id), key_expires_at: key.expires_at, at: read_at }
        } else {
            let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &Validation::new(Algorithm::HS256))
                .map_err(|_| invalid_credentials())?
                .claims;
            let user = db.user_by_id(&claims.sub).await?.ok_or_else(invalid_credentials)?;
            if user.token_version != claims.ver {
                return Err(invalid_credentials());
            }
            Verified { user, key_id: None, key_expires_at: None, at: read_at }
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if self.epoch.load(std::sync::atomic::Ordering::SeqCst) != epoch {
            return Ok(verified);
        }
        if cache.len() > 50_000 {
            cache.retain(|_, v| v.at.elapsed() < CACHE_TTL);
        }
        cache.insert(digest, verified.clone());
        Ok(verified)
    }

    /// Drop every cached credential of `user_id` (after a key is deleted, a password, tier or
    /// status changes), so the change holds from the next request on.
    pub fn forget_user(&self, user_id: &str) {
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, v| v.user.id != user_id);
    }

    /// A session token for `user`, and when it expires (unix ms).
    pub fn issue_session(&self, user: &UserRow) -> AppResult<(String, i64)> {
        let now = chrono::Utc::now().timestamp();
        let exp = now + self.session_ttl;
        let claims = Claims { sub: user.id.clone(), exp, iat: now, ver: user.token_version };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("signing a session token: {e}")))?;
        Ok((token, exp * 1000))
    }

    /// The tier an IP allowlist entry gives `ip`, first match wins (casbin `ipMatch`).
    pub fn network_tier(&self, ip: IpAddr) -> Option<String> {
        let ip = ip.to_canonical().to_string();
        self.allowlist.iter().find(|(cidr, _)| casbin::function_map::ip_match(&ip, cidr)).map(|(_, tier)| tier.clone())
    }

    /// May `ip` reach admin routes? (Yes when no admin allowlist is configured.)
    pub fn admin_network_allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical().to_string();
        self.admin_allowlist.is_empty()
            || self.admin_allowlist.iter().any(|cidr| casbin::function_map::ip_match(&ip, cidr))
    }

    /// The client's address: the peer, or, when the peer is a trusted proxy, the right-most
    /// `X-Forwarded-For` entry (over every such header, in order) that is not itself a trusted
    /// proxy; when all are trusted, the left-most. A proxied request whose header cannot be
    /// read (not text, an entry that is not an address, or none at all) comes from an unknown
    /// address (`0.0.0.0`), which matches no allowlist entry: never from the proxy itself.
    pub fn client_ip<'a>(&self, peer: IpAddr, forwarded_for: impl IntoIterator<Item = &'a [u8]>) -> IpAddr {
        const UNKNOWN: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
        let peer = peer.to_canonical();
        let trusted = |ip: IpAddr| {
            let ip = ip.to_string();
            self.trusted_proxies.iter().any(|cidr| casbin::function_map::ip_match(&ip, cidr))
        };
        if !trusted(peer) {
            return peer;
        }
        let mut hops = Vec::new();
        for header in forwarded_for {
            let Ok(text) = std::str::from_utf8(header) else { return UNKNOWN };
            for entry in text.split(',') {
                match entry.trim().parse::<IpAddr>() {
                    Ok(ip) => hops.push(ip.to_canonical()),
                    Err(_) => return UNKNOWN,
                }
            }
        }
        match hops.iter().rev().find(|ip| !trusted(**ip)) {
            Some(client) => *client,
            None => hops.first().copied().unwrap_or(UNKNOWN),
        }
    }
}

/// How an address is counted for limits: IPv4 as is, IPv6 by its /64 (one host usually has a
/// whole /64 to rotate through).
pub fn address_subject(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        v4 => v4.to_string(),
    }
}

fn invalid_credentials() -> AppError {
    AppError::coded(ErrorCode::Unauthorized, "the API key or session token is invalid, expired or revoked")
}

/// A random URL-safe token of `len` alphanumeric characters.
pub fn random_token(len: usize) -> String {
    rand::rng().sample_iter(rand::distr::Alphanumeric).take(len).map(char::from).collect()
}

/// A new API key secret: `esk_` and 40 random alphanumeric characters (≈ 238 bits).
pub fn new_key_secret() -> String {
    format!("{KEY_PREFIX}{}", random_token(40))
}

/// sha256 (hex) of a secret, as stored.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Hash a password with argon2id (default parameters: 19 MiB, 2 passes), as a PHC string.
pub fn hash_password(password: &str) -> AppResult<String> {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(anyhow::anyhow!("hashing a password: {e}")))
}

/// Does `password` match the PHC string `hash`? A hash that does not parse does not match.
pub fn verify_password(hash: &str, password: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash no password matches, verified against when the e-mail is unknown so that a wrong
/// address and a wrong password take the same time.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| hash_password(&random_token(32)).expect("argon2 hashes a password"));
    &DECOY
}

/// The tier's configuration; unknown tiers (removed from the configuration while users still
/// have them) get the `anonymous` tier's limits.
pub fn tier<'a>(config: &'a Config, name: &str) -> &'a TierConfig {
    config.tiers.get(name).or_else(|| config.tiers.get("anonymous")).expect("the anonymous tier is always defined")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery staple").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse battery staple"));
        assert!(!verify_password(&h, "Correct horse battery staple"));
        assert!(!verify_password("not a hash", "x"));
    }

    #[test]
    fn ipv6_callers_are_counted_by_their_64() {
        assert_eq!(address_subject("2001:db8:1:2:aaaa::1".parse().unwrap()), "2001:db8:1:2::/64");
        assert_eq!(address_subject("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
    }

    #[test]
    fn key_secrets_are_long_random_and_prefixed() {
        let (a, b) = (new_key_secret(), new_key_secret());
        assert!(a.starts_with("esk_") && a.len() == 44 && a != b);
        assert_eq!(secret_hash(&a).len(), 64);
    }
}
