//! `cocoa issuer …`: management of the issuer's state (centres, staff, API
//! keys, certificate keys) and a check of the delivery configuration. Every
//! command takes the same `--data` / `--config` / `--database-url` as
//! `cocoa serve`, so it acts on the same state.

use std::io::BufRead as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use en_protocol::time::{Clock, SystemClock};
use issuer::domain::model::{Channel, Role};
use issuer::store::{ApiKeyKind, Store};

use super::{bad_input, print_json};
use crate::server::config::{self, Overrides};

/// Where the state is.
#[derive(Debug, Args)]
pub struct StateArgs {
    /// Data folder (`./data` by default).
    #[arg(long, global = true)]
    pub data: Option<PathBuf>,
    /// Database URL (`sqlite://…` or `postgres://…`), instead of the data folder's SQLite file.
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// TOML configuration file.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Create the data folder when it does not exist (otherwise refused:
    /// a command run in the wrong folder would make an empty database).
    #[arg(long, global = true)]
    pub create_data: bool,
}

#[derive(Debug, Args)]
pub struct IssuerArgs {
    #[command(flatten)]
    pub state: StateArgs,
    #[command(subcommand)]
    pub command: IssuerCommand,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Staff,
    Admin,
    System,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    Device,
    Admin,
}

#[derive(Debug, Subcommand)]
pub enum IssuerCommand {
    /// Creates a health centre; prints {"centre_id": …}.
    CreateCentre {
        /// Name, e.g. みなと保健所.
        #[arg(long)]
        name: String,
        /// Prefecture code, "01".."47".
        #[arg(long)]
        prefecture: String,
    },
    /// Creates a staff account; the password is read from the first line of stdin.
    CreateUser {
        /// Centre id.
        #[arg(long)]
        centre: i64,
        /// Login id.
        #[arg(long)]
        login: String,
        /// Role.
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// Creates an API key; prints {"api_key": …} (shown only once).
    CreateApiKey {
        /// device (the app) or admin (a case system).
        #[arg(long, value_enum)]
        kind: KindArg,
        /// Centre the key acts for (admin keys; none: every centre).
        #[arg(long)]
        centre: Option<i64>,
    },
    /// Lists the API keys (never the keys themselves): id, kind, centre,
    /// label, created and revoked times, as JSON lines.
    ApiKeys {
        /// Only the keys of this centre.
        #[arg(long)]
        centre: Option<i64>,
    },
    /// Revokes an API key at once (a key that leaked, a case system retired);
    /// prints {"revoked": id}.
    RevokeApiKey {
        /// The key's id (`cocoa issuer api-keys`).
        #[arg(long)]
        id: i64,
    },
    /// Prints the certificate public key(s) as PEM, signing key first.
    PublicKey,
    /// Makes a new certificate signing key; the old one stays published for a day.
    RotateKey,
    /// Sends a test message through the configured gateway (or outbox).
    SendTestMessage {
        /// Mobile number or e-mail address.
        #[arg(long)]
        to: String,
    },
}

fn valid_prefecture(p: &str) -> bool {
    p.len() == 2 && p.parse::<u8>().is_ok_and(|n| (1..=47).contains(&n))
}

pub fn run(args: IssuerArgs) -> anyhow::Result<()> {
    let flags = Overrides {
        data: args.state.data.clone(),
        database_url: args.state.database_url.clone(),
        ..Overrides::default()
    };
    let (c, warnings) = config::load(args.state.config.as_deref(), &config::process_env(), &flags)?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    // A test message needs no database; every other command does.
    if c.issuer.database_url.is_none()
        && !matches!(args.command, IssuerCommand::SendTestMessage { .. })
    {
        super::require_data_folder(&c.data, args.state.create_data)?;
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        if let IssuerCommand::SendTestMessage { to } = &args.command {
            return send_test_message(&c, to, clock.now().timestamp()).await;
        }
        if let IssuerCommand::CreateCentre { name, prefecture } = &args.command {
            if name.trim().is_empty() || name.chars().count() > 100 {
                return Err(bad_input("--name must be 1 to 100 characters"));
            }
            if !valid_prefecture(prefecture) {
                return Err(bad_input("--prefecture must be a JIS code from 01 to 47"));
            }
            store_support::private::create_private_dir(&c.data)?;
            let store = Store::connect(&issuer::http::database_url(&c.issuer, &c.data), 1).await?;
            let id = store
                .create_centre(name.trim(), prefecture, clock.now().timestamp())
                .await?;
            return print_json(&serde_json::json!({ "centre_id": id }));
        }
        let app = issuer::http::build(&c.issuer, &c.data, clock).await?;
        let issuer = &app.issuer;
        match args.command {
            IssuerCommand::CreateUser {
                centre,
                login,
                role,
            } => {
                let mut password = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut password)
                    .context("reading the password from stdin")?;
                let password = password.trim_end_matches(['\n', '\r']);
                let role = match role {
                    RoleArg::Staff => Role::Staff,
                    RoleArg::Admin => Role::Admin,
                    RoleArg::System => Role::System,
                };
                match issuer.create_staff(centre, &login, password, role).await {
                    Ok(Some(id)) => {
                        print_json(&serde_json::json!({ "user_id": id, "login": login }))
                    }
                    Ok(None) => Err(bad_input(format!("login {login:?} is taken"))),
                    Err(issuer::Error::Field(f)) => {
                        Err(bad_input(format!("{}: {}", f.field, f.message_en)))
                    }
                    Err(e) => Err(e.into()),
                }
            }
            IssuerCommand::CreateApiKey { kind, centre } => {
                let kind = match kind {
                    KindArg::Device => ApiKeyKind::Device,
                    KindArg::Admin => ApiKeyKind::Admin,
                };
                if let Some(cid) = centre
                    && issuer.store().centre(cid).await?.is_none()
                {
                    return Err(bad_input(format!("no centre {cid}")));
                }
                let (key, _) = issuer.create_api_key(kind, centre).await?;
                print_json(&serde_json::json!({ "api_key": key }))
            }
            IssuerCommand::ApiKeys { centre } => {
                for k in issuer.store().api_key_listing(centre).await? {
                    print_json(&serde_json::json!({
                        "id": k.id,
                        "kind": k.kind,
                        "centre_id": k.centre_id,
                        "label": k.label,
                        "created_at": k.created_at,
                        "revoked_at": k.revoked_at,
                    }))?;
                }
                Ok(())
            }
            IssuerCommand::RevokeApiKey { id } => {
                if issuer
                    .revoke_api_key(&issuer::service::Actor::cli(), id)
                    .await?
                {
                    print_json(&serde_json::json!({ "revoked": id }))
                } else {
                    Err(bad_input(format!(
                        "no live API key {id} (unknown, or revoked already)"
                    )))
                }
            }
            IssuerCommand::PublicKey => {
                for (kid, pem) in issuer.keyring().public_pems() {
                    println!("# kid: {kid}");
                    print!("{pem}");
                }
                Ok(())
            }
            IssuerCommand::RotateKey => {
                let kid = issuer.rotate_signing_key().await?;
                print_json(&serde_json::json!({ "kid": kid }))
            }
            IssuerCommand::CreateCentre { .. } | IssuerCommand::SendTestMessage { .. } => Ok(()),
        }
    })
}

async fn send_test_message(c: &config::CocoaConfig, to: &str, now: i64) -> anyhow::Result<()> {
    let (channel, to) = if to.contains('@') {
        (
            Channel::Email,
            issuer::domain::validate::email(to).map_err(bad_input)?,
        )
    } else {
        (
            Channel::Sms,
            issuer::domain::validate::mobile(to).map_err(bad_input)?,
        )
    };
    let delivery = issuer::http::delivery_from_config(&c.issuer, &c.data)?;
    let msg = issuer::delivery::Message {
        channel,
        to,
        subject: (channel == Channel::Email).then(|| "【HER-SYS】テストメッセージ".to_owned()),
        body: "これは cocoa-rs の送信設定を確認するためのテストメッセージです。処理番号は含まれていません。".into(),
    };
    delivery
        .send(&msg, now)
        .await
        .map_err(|e| anyhow::anyhow!("test message not delivered: {e}"))?;
    print_json(&serde_json::json!({ "status": "sent", "channel": channel.as_str() }))
}
