//! `account-streams`: the account and login-session stream processor.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "account-streams", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the processor (the default).
    Run,
}

fn main() {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => {
            eprintln!("account-streams: the processor is not wired yet (see open issues)");
            std::process::exit(2);
        }
    }
}
