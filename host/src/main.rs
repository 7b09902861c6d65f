//! The `easel` command: `serve` runs the server, `openapi` prints the API spec.

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
    Serve {
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
    /// List users (id, e-mail, tier).
    List,
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
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Write a new stand-alone plugin crate that builds as is.
    New {
        /// provider, style-pack, cropper or filter.
        kind: String,
        /// Plugin id and folder name, e.g. my-provider.
        name: String,
        /// Where to create the folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The SDK dependency line to write (default: this build's SDK path, else the published crate).
        #[arg(long)]
        sdk: Option<String>,
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
            let sdk = sdk.unwrap_or_else(easel::scaffold::default_sdk_dependency);
            match easel::scaffold::plugin_new(kind, &name, &dir, &sdk) {
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
        Command::Serve { listen, data_dir, config, log_format } => {
            let overrides = Overrides { listen, data_dir, log_format };
            let config = match Config::load(config.as_deref(), &overrides) {
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
            let mut cursor = None;
            loop {
                let (users, next) = app.list_users(cursor, 100).await?;
                for u in users {
                    println!("{}\t{}\t{}{}", u.id, u.email, u.tier, if u.disabled != 0 { "\tdisabled" } else { "" });
                }
                match next {
                    Some(n) => cursor = Some(n),
                    None => break,
                }
            }
        }
    }
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
    }
    Ok(())
}
