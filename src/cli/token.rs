//! `spindle token create`: makes an API bearer token, prints it once, stores only its hash.

use std::path::PathBuf;
use std::process::ExitCode;

use spindle::api::token;
use spindle::evidence;

#[derive(clap::Args, Debug)]
pub struct TokenCmd {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token for the API's mutations (POST /reconcile, /profile, /pause, /resume); it is printed once.
    Create(CreateArgs),
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// The state directory of the `spindle run` the token is for (default: $SPINDLE_STATE_DIR or /var/lib/spindle).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// A name to tell tokens apart (default: the token's id).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

pub fn run(cmd: &TokenCmd) -> anyhow::Result<ExitCode> {
    match &cmd.command {
        TokenCommand::Create(args) => {
            let state_dir = args
                .state_dir
                .clone()
                .unwrap_or_else(evidence::default_state_dir);
            let name = args.name.clone().unwrap_or_default();
            let (stored, secret) = token::create(&state_dir, &name)?;
            // The token on stdout alone (for scripts); the rest on stderr.
            println!("{secret}");
            eprintln!(
                "token {} created in {}; this is the only time it is shown (only its SHA-256 is kept). Send it as `Authorization: Bearer <token>`.",
                stored.id,
                token::tokens_path(&state_dir).display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
