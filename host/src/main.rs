//! The `easel` command: `serve` runs the server; `config check` and `health` help operators and
//! container health checks; `user` and `key` manage accounts; `openapi` prints the API spec;
//! `plugin` helps plugin authors.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use easel::config::{Config, LogFormat, Overrides};

/// Easel: a self-hosted AI image generation server.
#[derive(Parser)]
#[command(name = "easel", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (defaults: 127.0.0.1:8080, data in ./easel-data).
    Serve(ServeArgs),
    /// Check the configuration without starting the server.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Ask a running server whether it is alive (`GET /health`); exit 0 when it is. For
    /// container health checks: the Docker image needs no curl.
    Health {
        /// The server's base URL [default: http://<listen address of the configuration>].
        #[arg(long, env = "EASEL_URL")]
        url: Option<String>,
        /// TOML configuration file, to find the listen address when --url is not given.
        #[arg(long, env = "EASEL_CONFIG")]
        config: Option<PathBuf>,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
        /// Ask `GET /ready` instead: the database, the blob store and the plugins all answer.
        #[arg(long)]
        ready: bool,
    },
    /// Print the OpenAPI 3 spec (JSON) to stdout.
    Openapi,
    /// Tools for plugin authors.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Manage user accounts (operators; works on the configured database directly).
    User {
        #[command(flatten)]
        target: Target,
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API keys (operators).
    Key {
        #[command(flatten)]
        target: Target,
        #[command(subcommand)]
        command: KeyCommand,
    },
}

/// Where `serve` (and `config check`) take the configuration from: defaults, then the file,
/// then `EASEL_*` variables, then these flags.
#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on [env: EASEL_LISTEN].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Directory for the database, images and plugins [env: EASEL_DATA_DIR].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// TOML configuration file (see docker/easel.example.toml).
    #[arg(long, env = "EASEL_CONFIG")]
    config: Option<PathBuf>,
    /// Log format [env: EASEL_LOG_FORMAT].
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
}

impl ServeArgs {
    /// Load the configuration exactly as `easel serve` does.
    fn load(&self) -> Result<Config, easel::config::ConfigError> {
        let overrides = Overrides { listen: self.listen, data_dir: self.data_dir.clone(), log_format: self.log_format };
        Config::load(self.config.as_deref(), &overrides)
    }
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Load the configuration as `serve` would (file + environment + flags), validate it and
    /// print the effective configuration as TOML with secrets redacted. Exits 2 on an error.
    Check(ServeArgs),
}

/// Which server's data an operator command works on.
#[derive(clap::Args)]
struct Target {
    /// TOML configuration file, as given to `easel serve`.
    #[arg(long, env = "EASEL_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Data directory [env: EASEL_DATA_DIR].
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; prints its id. Without --password-stdin the user signs in with API keys only.
    Create {
        /// E-mail address.
        #[arg(long)]
        email: String,
        /// Tier (default: auth.default_tier), e.g. admin.
        #[arg(long)]
        tier: Option<String>,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change a user's tier.
    SetTier {
        /// The user's e-mail address or id.
        user: String,
        /// New tier.
        tier: String,
    },
    /// List users (id, e-mail, tier, and `disabled` for disabled accounts).
    List,
    /// Disable a user: their keys and sessions stop working at once (data is kept).
    Disable {
        /// The user's e-mail address or id.
        user: String,
    },
    /// Enable a disabled user again.
    Enable {
        /// The user's e-mail address or id.
        user: String,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create an API key for a user; prints the secret (shown only this once).
    Create {
        /// The user's e-mail address or id.
        #[arg(long)]
        user: String,
        /// Label of the key.
        #[arg(long, default_value = "cli")]
        name: String,
    },
    /// List API keys (id, user, name, prefix, created, last used, expires; times in UTC).
    List {
        /// Only this user's keys (e-mail address or id); default: every user's.
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke an API key: it stops working at once.
    Revoke {
        /// The key's id (`key_…`, as `easel key list` shows).
        key: String,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Write a new stand-alone plugin crate that builds as is, anywhere: it carries its own copy
    /// of the SDK (sdk/easel-plugin-sdk) and a Cargo.lock.
    New {
        /// provider, style-pack, cropper or filter.
        kind: String,
        /// Plugin id and folder name, e.g. my-provider.
        name: String,
        /// Where to create the folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// A dependency line to use instead of the SDK copy written beside the plugin, e.g.
        /// 'easel-plugin-sdk = { path = "../easel-plugin-sdk" }' (then no copy and no Cargo.lock).
        #[arg(long)]
        sdk: Option<String>,
    },
    /// Write the plugin SDK crate this binary speaks (sources, WIT, stand-alone Cargo.toml).
    Sdk {
        /// The folder to write the crate into (created; must be empty or absent).
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a plugin folder: manifest, ABI version, exports and what it offers.
    Check {
        /// The folder with plugin.toml (and the .wasm, or a target/ after building).
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Openapi => {
            print!("{}", easel::api::spec_json());
            ExitCode::SUCCESS
        }
        Command::Plugin(PluginCommand::New { kind, name, dir, sdk }) => {
            let kind = match kind.as_str() {
                "provider" => easel::plugins::manifest::PluginKind::Provider,
                "style-pack" => easel::plugins::manifest::PluginKind::StylePack,
                "cropper" => easel::plugins::manifest::PluginKind::Cropper,
                "filter" => easel::plugins::manifest::PluginKind::Filter,
                other => {
                    eprintln!("easel: unknown plugin kind {other:?}; use provider, style-pack, cropper or filter");
                    return ExitCode::from(2);
                }
            };
            match easel::scaffold::plugin_new(kind, &name, &dir, sdk.as_deref()) {
                Ok(path) => {
                    println!("created {}", path.display());
                    println!("next: cd {} && cargo build --release --target wasm32-wasip2", path.display());
                    println!("then: easel plugin check {}", path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("easel: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Plugin(PluginCommand::Sdk { out }) => match easel::scaffold::write_sdk(&out) {
            Ok(()) => {
                println!("wrote easel-plugin-sdk {} to {}", easel::scaffold::sdk_version(), out.display());
                println!("depend on it with: easel-plugin-sdk = {{ path = {:?} }}", out.display().to_string());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("easel: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Plugin(PluginCommand::Check { dir }) => match easel::scaffold::plugin_check(&dir) {
            Ok(report) => {
                println!("ok: {} ({}) from {}", report.id, report.kind.as_str(), report.wasm.display());
                for line in report.offers {
                    println!("  offers {line}");
                }
                for line in report.asks {
                    println!("  asks for {line} (the operator must grant it under [plugins.{}])", report.id);
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("easel plugin check: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::User { target, command } => operator(target, |app| Box::pin(user_command(app, command))),
        Command::Key { target, command } => operator(target, |app| Box::pin(key_command(app, command))),
        Command::Serve(args) => {
            let config = match args.load() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("easel: {e}");
                    return ExitCode::from(2);
                }
            };
            // From here on every line goes through tracing: in JSON mode nothing else may
            // reach the log stream.
            easel::telemetry::init(config.log_format);
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the async runtime");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(easel::server::serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "easel stopped on an error");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Config(ConfigCommand::Check(args)) => match args.load() {
            Ok(config) => {
                for variable in &config.ignored_env {
                    eprintln!("easel: warning: {variable} is ignored: it names no configuration key");
                }
                match config.redacted_toml() {
                    Ok(text) => {
                        print!("{text}");
                        eprintln!("easel: the configuration is valid");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("easel: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
            Err(e) => {
                eprintln!("easel: {e}");
                ExitCode::from(2)
            }
        },
        Command::Health { url, config, timeout, ready } => health(url, config, timeout, ready),
    }
}

/// `easel health`: `GET <url>/health`, exit 0 on `200 {"status":"ok"}` (with `--ready`:
/// `GET <url>/ready`, exit 0 on `200 {"ready":true}`), 1 otherwise.
fn health(url: Option<String>, config: Option<PathBuf>, timeout: u64, ready: bool) -> ExitCode {
    let base = match url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            // The configured listen address, reached over loopback when it is a wildcard.
            let listen = Config::load(config.as_deref(), &Overrides::default())
                .map(|c| c.listen)
                .unwrap_or_else(|_| Config::default().listen);
            let ip = match listen.ip() {
                std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
                std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
                ip => ip,
            };
            format!("http://{}", SocketAddr::new(ip, listen.port()))
        }
    };
    let target = format!("{base}/{}", if ready { "ready" } else { "health" });
    let check = async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(timeout.max(1)))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let response = client.get(&target).send().await?;
        let status = response.status();
        // (reqwest's `json` feature is not enabled for the server: parse the bytes ourselves.)
        let body: serde_json::Value = serde_json::from_slice(&response.bytes().await?).unwrap_or_default();
        anyhow::Ok((status, body))
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("easel: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(check) {
        Ok((status, body)) if status.is_success() && (body["status"] == "ok" || body["ready"] == true) => {
            match body["version"].as_str() {
                Some(version) => println!("ok: {target} (version {version})"),
                None => println!("ok: {target}"),
            }
            ExitCode::SUCCESS
        }
        Ok((status, body)) => {
            eprintln!("easel health: {target} answered {status}: {body}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("easel health: {target}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

type OperatorFuture = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>>>>;

/// Run an operator command against the configured database and print its error, if any.
fn operator(target: Target, run: impl FnOnce(easel::service::App) -> OperatorFuture) -> ExitCode {
    let overrides = Overrides { data_dir: target.data_dir, ..Overrides::default() };
    let mut config = match Config::load(target.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("easel: {e}");
            return ExitCode::from(2);
        }
    };
    // An operator command neither watches files nor needs more than a connection or two.
    config.plugins.watch = false;
    config.database_max_connections = config.database_max_connections.min(2);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("easel: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let app = easel::server::build_app(config).await?;
        run(app).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("easel: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A user by e-mail address or `usr_…` id.
async fn find_user(app: &easel::service::App, user: &str) -> anyhow::Result<easel::db::accounts::UserRow> {
    let found = if user.starts_with("usr_") {
        app.db.user_by_id(user).await?
    } else {
        app.db.user_by_email(&user.trim().to_lowercase()).await?
    };
    found.ok_or_else(|| anyhow::anyhow!("no user {user:?}"))
}

/// Every user, oldest page last.
async fn all_users(app: &easel::service::App) -> anyhow::Result<Vec<easel::db::accounts::UserRow>> {
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let (users, next) = app.list_users(cursor, 100).await?;
        all.extend(users);
        match next {
            Some(n) => cursor = Some(n),
            None => return Ok(all),
        }
    }
}

/// A unix-milliseconds time as RFC 3339 UTC, `-` for none.
fn utc(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| "-".into())
}

async fn user_command(app: easel::service::App, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create { email, tier, name, password_stdin } => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                Some(line.trim_end_matches(['\r', '\n']).to_string())
            } else {
                None
            };
            let new = easel::service::accounts::NewUser { email, password, name, tier, invite_code: None };
            let user = app.create_user(new, true).await?;
            println!("{}", user.id);
            eprintln!("created {} ({}, tier {})", user.id, user.email, user.tier);
        }
        UserCommand::SetTier { user, tier } => {
            let user = find_user(&app, &user).await?;
            let patch = easel::service::accounts::AdminPatch { tier: Some(tier), ..Default::default() };
            let user = app.admin_update_user(&user.id, patch).await?;
            eprintln!("{} ({}) is now in tier {}", user.id, user.email, user.tier);
        }
        UserCommand::List => {
            for u in all_users(&app).await? {
                println!("{}\t{}\t{}{}", u.id, u.email, u.tier, if u.disabled != 0 { "\tdisabled" } else { "" });
            }
        }
        UserCommand::Disable { user } => set_disabled(&app, &user, true).await?,
        UserCommand::Enable { user } => set_disabled(&app, &user, false).await?,
    }
    Ok(())
}

/// Disable or enable a user; takes effect at once on every replica.
async fn set_disabled(app: &easel::service::App, user: &str, disabled: bool) -> anyhow::Result<()> {
    let user = find_user(app, user).await?;
    let patch = easel::service::accounts::AdminPatch { disabled: Some(disabled), ..Default::default() };
    let user = app.admin_update_user(&user.id, patch).await?;
    eprintln!("{} ({}) is now {}", user.id, user.email, if disabled { "disabled" } else { "enabled" });
    Ok(())
}

async fn key_command(app: easel::service::App, command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Create { user, name } => {
            let user = find_user(&app, &user).await?;
            let (key, secret) = app.create_key(&user.id, &name, None).await?;
            println!("{secret}");
            eprintln!("created {} for {}; the secret above is shown only once", key.id, user.email);
        }
        KeyCommand::List { user } => {
            let users = match user {
                Some(user) => vec![find_user(&app, &user).await?],
                None => all_users(&app).await?,
            };
            println!("id\tuser\tname\tprefix\tcreated\tlast_used\texpires");
            for user in users {
                for key in app.db.list_keys(&user.id).await? {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        key.id,
                        user.email,
                        key.name,
                        key.prefix,
                        utc(Some(key.created_at)),
                        utc(key.last_used_at),
                        utc(key.expires_at)
                    );
                }
            }
        }
        KeyCommand::Revoke { key } => {
            let user_id = app.revoke_key(&key).await?;
            eprintln!("revoked {key} (of {user_id}); it no longer works");
        }
    }
    Ok(())
}
