//! `cocoa app ui`: the phone's screens in a browser (crate `phone-ui`).
//!
//! 「It prints its URL. Loopback by default; it is the phone, not a server
//! for others.」 Several `--home`: several phones, `/p/0/`, `/p/1/`…

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
}

/// Serves the phones in `homes` until Ctrl-C.
pub fn run(clock: Arc<dyn Clock>, homes: &[PathBuf], args: &UiArgs) -> anyhow::Result<()> {
    let config = phone_ui::Config {
        homes: homes.to_vec(),
        clock,
    };
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
