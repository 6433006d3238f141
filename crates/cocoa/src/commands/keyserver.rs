//! `cocoa keyserver …`: management of the key server's state (trusted
//! issuers, export signing keys) and an export cycle on demand. Every command
//! takes the same `--data` / `--config` / `--database-url` as `cocoa serve`,
//! so it acts on the same state.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use en_protocol::time::{Clock, SystemClock};
use keyserver::store::{IssuerRow, Store};
use keyserver::trust::{key_id, parse_public_key_pem};

use super::{bad_input, print_json};
use crate::server::config::{self, Overrides};

#[derive(Debug, Args)]
pub struct KeyserverArgs {
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
    #[command(subcommand)]
    pub command: KeyserverCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeyserverCommand {
    /// Trusts a verification issuer's public key under a health authority ID
    /// (the `healthAuthorityID` of publish requests); prints {"kid": …}.
    AddIssuer {
        /// `iss` of the issuer's certificates.
        #[arg(long)]
        iss: String,
        /// SPKI PEM public key: the PEM text or a file holding it.
        #[arg(long)]
        public_key: String,
        /// Key id (`kid`); computed from the key as the issuer does when absent.
        #[arg(long)]
        kid: Option<String>,
        /// Health authority ID publish requests name.
        #[arg(long)]
        health_authority_id: String,
        /// Export region of this health authority's keys (default: the main
        /// region, `export.region`), e.g. `canary`: its keys are exported to
        /// `{region}/…` and listed in `{region}/index.txt` and
        /// `{region}/list.json` only.
        #[arg(long)]
        region: Option<String>,
    },
    /// Runs one export cycle of every region now; prints what it did as
    /// JSON. The embargo of still-valid keys always holds.
    ExportNow {
        /// Minimum age of a closed window (default: the configured one);
        /// `0s` closes the current window and exports it at once.
        #[arg(long, value_parser = keyserver::config::parse_duration)]
        min_age: Option<std::time::Duration>,
    },
    /// Prints the export signing public key(s) as SPKI PEM (what phones must trust).
    ExportPublicKey,
    /// Validates and publishes a phone configuration (COCOA's two documents) as the next
    /// version, served at /exposure_configuration/…; prints {"version", …}. Nonsense is
    /// refused (exit 2) and nothing is published.
    PublishConfig {
        /// COCOA's configuration.json (`--config` is every keyserver command's TOML file).
        #[arg(long)]
        configuration: PathBuf,
        /// COCOA's risk_calculation_configuration.json.
        #[arg(long)]
        risk: PathBuf,
        /// The simulation report the change was checked with (kept with the version).
        #[arg(long)]
        simulation_report: Option<PathBuf>,
        /// Who publishes it (default: $USER).
        #[arg(long)]
        published_by: Option<String>,
    },
    /// Lists the published configuration versions as JSON, oldest first.
    Configs,
}

/// A stable code with the Japanese and the English message, as one line (exit 2).
fn refused(code: &str, ja: &str, en: &str) -> anyhow::Error {
    bad_input(format!("{code}: {ja} / {en}"))
}

/// Largest simulation report kept with a version.
const MAX_REPORT_BYTES: u64 = 16 << 20;

fn read_input(path: &std::path::Path, limit: u64) -> anyhow::Result<String> {
    let unreadable = |en: String| {
        refused(
            "INPUT_UNREADABLE",
            &format!("ファイル {} を読めません", path.display()),
            &en,
        )
    };
    let len = std::fs::metadata(path)
        .map_err(|e| unreadable(format!("cannot read {}: {e}", path.display())))?
        .len();
    if len > limit {
        return Err(unreadable(format!(
            "{} is larger than {limit} bytes",
            path.display()
        )));
    }
    std::fs::read_to_string(path)
        .map_err(|e| unreadable(format!("cannot read {} as UTF-8 text: {e}", path.display())))
}

/// Both documents validated (ranges, ordered thresholds, known operators, format_version).
fn validated(config: &str, risk: &str) -> anyhow::Result<()> {
    use en_protocol::exposure_configuration::ExposureConfiguration;
    use en_protocol::risk_calculation::RiskCalculationConfiguration;
    ExposureConfiguration::from_json(config.as_bytes())
        .map_err(|e| refused(e.code(), &e.message_ja(), &format!("--configuration: {e}")))?;
    RiskCalculationConfiguration::from_json(risk.as_bytes())
        .map_err(|e| refused(e.code(), &e.message_ja(), &format!("--risk: {e}")))?;
    Ok(())
}

fn read_pem(arg: &str) -> anyhow::Result<String> {
    if arg.trim_start().starts_with("-----BEGIN") {
        return Ok(arg.to_owned());
    }
    std::fs::read_to_string(arg).map_err(|e| bad_input(format!("--public-key {arg}: {e}")))
}

pub fn run(args: KeyserverArgs) -> anyhow::Result<()> {
    let flags = Overrides {
        data: args.data.clone(),
        ..Overrides::default()
    };
    let (mut c, warnings) = config::load(args.config.as_deref(), &config::process_env(), &flags)?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    if let Some(url) = args.database_url {
        c.keyserver.database_url = Some(url);
    }
    if c.keyserver.database_url.is_none() {
        super::require_data_folder(&c.data, args.create_data)?;
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let now = clock.now().timestamp();
        match args.command {
            KeyserverCommand::AddIssuer {
                iss,
                public_key,
                kid,
                health_authority_id,
                region,
            } => {
                if iss.trim().is_empty() || health_authority_id.trim().is_empty() {
                    return Err(bad_input("--iss and --health-authority-id must not be empty"));
                }
                if let Some(r) = &region
                    && !keyserver::store::valid_region(r)
                {
                    return Err(bad_input(format!(
                        "--region {r:?}: use 1-32 letters, digits, - or _"
                    )));
                }
                let pem = read_pem(&public_key)?;
                let vk = parse_public_key_pem(&pem).map_err(bad_input)?;
                let kid = match kid {
                    Some(k) if !k.trim().is_empty() => k,
                    Some(_) => return Err(bad_input("--kid must not be empty")),
                    None => key_id(&vk)?,
                };
                store_support::private::create_private_dir(&c.data)?;
                let store = Store::connect(
                    &keyserver::http::database_url(&c.keyserver, &c.data),
                    1,
                )
                .await?;
                let row = IssuerRow {
                    health_authority_id: health_authority_id.clone(),
                    iss: iss.clone(),
                    kid: kid.clone(),
                    public_key_pem: pem,
                    region: region.clone(),
                };
                if !store.add_trusted_issuer(&row, now).await? {
                    return Err(bad_input(format!(
                        "health authority {health_authority_id:?} already trusts a key with kid {kid:?}"
                    )));
                }
                print_json(&serde_json::json!({
                    "health_authority_id": health_authority_id,
                    "iss": iss,
                    "kid": kid,
                    "region": region.unwrap_or_else(|| c.keyserver.export.region.clone()),
                }))
            }
            KeyserverCommand::ExportNow { min_age } => {
                let app = keyserver::http::build(&c.keyserver, &c.data, clock, Vec::new()).await?;
                let min_age = min_age.unwrap_or(c.keyserver.export.min_age).as_secs() as i64;
                let r = app
                    .exporter
                    .run_cycle(keyserver::export::CycleOptions { min_age })
                    .await?;
                print_json(&serde_json::json!({
                    "batches_cut": r.cut.len(),
                    "batches_built": r.built.len(),
                    "files": r.files,
                    "deleted_files": r.deleted_files,
                    "deleted_keys": r.deleted_keys,
                    "indexes_written": r.indexes_written,
                }))
            }
            KeyserverCommand::ExportPublicKey => {
                store_support::private::create_private_dir(&c.data)?;
                let store = Store::connect(
                    &keyserver::http::database_url(&c.keyserver, &c.data),
                    1,
                )
                .await?;
                let secret = keyserver::http::load_secret(&c.keyserver, &c.data)?;
                let signers =
                    keyserver::signing::load_signers(
                        &c.keyserver.export,
                        &store,
                        now,
                        secret.as_deref().map(|s| s.as_slice()),
                    )
                    .await?;
                for (_, pem) in keyserver::signing::public_keys(&signers)? {
                    print!("{pem}");
                }
                Ok(())
            }
            KeyserverCommand::PublishConfig {
                configuration: config,
                risk,
                simulation_report,
                published_by,
            } => {
                let config_json = read_input(&config, 1 << 20)?;
                let risk_json = read_input(&risk, 1 << 20)?;
                validated(&config_json, &risk_json)?;
                let report = simulation_report
                    .as_deref()
                    .map(|p| read_input(p, MAX_REPORT_BYTES))
                    .transpose()?;
                let by = published_by
                    .or_else(|| std::env::var("USER").ok())
                    .unwrap_or_default();
                if by.trim().is_empty() {
                    return Err(refused(
                        "PUBLISHED_BY_MISSING",
                        "公開者の名前（--published-by）を指定してください",
                        "give who publishes it with --published-by",
                    ));
                }
                store_support::private::create_private_dir(&c.data)?;
                let store = Store::connect(
                    &keyserver::http::database_url(&c.keyserver, &c.data),
                    1,
                )
                .await?;
                let version = store
                    .publish_configuration(&config_json, &risk_json, now, &by, report.as_deref())
                    .await?;
                print_json(&serde_json::json!({
                    "version": version,
                    "published_at": now,
                    "published_by": by,
                    "configuration_sha256": en_protocol::served_configuration::sha256_hex(config_json.as_bytes()),
                    "risk_calculation_configuration_sha256": en_protocol::served_configuration::sha256_hex(risk_json.as_bytes()),
                    "simulation_report": report.is_some(),
                }))
            }
            KeyserverCommand::Configs => {
                store_support::private::create_private_dir(&c.data)?;
                let store = Store::connect(
                    &keyserver::http::database_url(&c.keyserver, &c.data),
                    1,
                )
                .await?;
                let rows = store.configurations().await?;
                let list: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "version": r.version,
                            "published_at": r.published_at,
                            "published_by": r.published_by,
                            "configuration_sha256": en_protocol::served_configuration::sha256_hex(r.configuration_json.as_bytes()),
                            "risk_calculation_configuration_sha256": en_protocol::served_configuration::sha256_hex(r.risk_calculation_json.as_bytes()),
                            "simulation_report_bytes": r.simulation_report.as_ref().map(String::len),
                        })
                    })
                    .collect();
                print_json(&list)
            }
        }
    })
}
