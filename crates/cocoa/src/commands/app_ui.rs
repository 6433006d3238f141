//! `cocoa app ui`: the phone's screens in a browser (crate `phone-ui`).
//!
//! 「It prints its URL. Loopback by default; it is the phone, not a server
//! for others.」 Several `--home`: several phones, `/p/0/`, `/p/1/`…
//! 「The UI checks for exposure in the background while it runs, at the
//! cadence phones use (every 4 h by default, configurable, immediately on
//! start)」: `--check-every`. Emulator mode: `--outbox` (the issuer's
//! development outbox) and one `--contact` per `--home`, in order.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use en_protocol::time::Clock;

/// `cocoa app ui`.
#[derive(Debug, Args)]
pub struct UiArgs {
    /// Address to listen on (loopback; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8091", value_name = "ADDR")]
    pub listen: String,
    /// Background exposure checks every this long (`4h`, `30m`; the first at
    /// start); `0s` turns them off (「今すぐ確認」 only).
    #[arg(long, default_value = "4h", value_name = "DURATION", value_parser = keyserver::config::parse_duration)]
    pub check_every: std::time::Duration,
    /// Emulator: the issuer's development outbox (`cocoa serve --outbox`);
    /// each phone shows the messages sent to its `--contact`.
    #[arg(long, value_name = "DIR")]
    pub outbox: Option<PathBuf>,
    /// Emulator: a phone's mobile number or e-mail address, once per
    /// `--home`, in the same order.
    #[arg(long, value_name = "PHONE|EMAIL", requires = "outbox")]
    pub contact: Vec<String>,
}

/// Serves the phones in `homes` until Ctrl-C.
pub fn run(clock: Arc<dyn Clock>, homes: &[PathBuf], args: &UiArgs) -> anyhow::Result<()> {
    let mut config = phone_ui::Config::new(homes.to_vec(), clock);
    config.check_every = (!args.check_every.is_zero()).then_some(args.check_every);
    config.outbox = args.outbox.clone();
    config.contacts = args.contact.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| {
                format!(
                    "{} で待ち受けできませんでした。別のプログラムが使っている場合は --listen 127.0.0.1:<ポート> で変えてください。 / Cannot listen on {}: choose another with --listen 127.0.0.1:<port>.",
                    args.listen, args.listen
                )
            })?;
        let addr = listener.local_addr()?;
        let base = format!("http://{addr}");
        println!("listening on {base}/");
        for line in phone_ui::describe(homes, &base) {
            println!("  {line}");
        }
        phone_ui::serve(config, listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
        Ok(())
    })
}
