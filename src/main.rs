//! The `spindle` command line: parses flags, runs a command, maps failures to exit statuses.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let daemon = matches!(args.command, cli::Command::Run(_));
    cli::init_tracing(args.global.verbose, daemon);
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            // One message, the whole cause chain on one line; never a panic or a backtrace.
            eprintln!("error: {}", cli::render_error(&e));
            ExitCode::from(1)
        }
    }
}
