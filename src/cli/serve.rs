//! `ferry serve [--listen ADDR]`: the read-only dashboard over the ledger (see `crate::serve`).

use clap::Args;

use super::exit;
use super::runs::LedgerOpts;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The address to listen on (default: `[serve] listen`, else 127.0.0.1:8640).
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    #[command(flatten)]
    pub ledger: LedgerOpts,
}

pub fn exec(a: ServeArgs) -> u8 {
    let config = match crate::config::Config::discover(a.ledger.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            super::eprint_error(&e.to_string());
            return exit::USAGE;
        }
    };
    let Some(token) = config.serve.token.clone() else {
        super::eprint_error(
            "`ferry serve` needs an access token: set `[serve] token = \"env:VAR\"` in the config",
        );
        return exit::USAGE;
    };
    let addr = match crate::serve::listen_addr(a.listen.as_deref(), config.serve.listen.as_deref())
    {
        Ok(a) => a,
        Err(e) => {
            super::eprint_error(&e);
            return exit::USAGE;
        }
    };
    let loc = crate::ledger::LedgerLocation::for_config(&config);
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            super::eprint_error(&e.to_string());
            return exit::USAGE;
        }
    };
    let r = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        eprintln!("ferry serve: http://{bound}/ (ledger {})", loc.describe());
        crate::serve::serve(loc, listener, token).await
    });
    match r {
        Ok(()) => 0,
        Err(e) => {
            super::eprint_error(&e);
            1
        }
    }
}
