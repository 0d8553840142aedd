//! `account-streams`: the account and login-session stream processor.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 invalid settings or usage,
//! 3 load generator run with `--strict` saw timeouts or unexpected answers.

use std::process::ExitCode;

use account_streams::loadgen::{self, LoadgenArgs};
use account_streams::settings::{self, LogFormat, RunArgs, Settings};
use account_streams::telemetry;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "account-streams",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Options of `run` (the default command).
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the processor (the default when no command is given).
    Run(Box<RunArgs>),
    /// Generate login/channel-server traffic and report outcomes and latency.
    Loadgen(Box<LoadgenArgs>),
    /// Time bcrypt verifications at the service's cost (for scripts/bench-service).
    #[command(hide = true)]
    BcryptTiming {
        #[arg(long, default_value_t = 20)]
        rounds: u32,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
                || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line: the first line of clap's message names the bad value.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("account-streams: {}", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    match cli.command {
        None => run(cli.run),
        Some(Command::Run(args)) => run(*args),
        Some(Command::Loadgen(args)) => loadgen_main(*args),
        Some(Command::BcryptTiming { rounds }) => bcrypt_timing(rounds),
    }
}

/// Prints `bcrypt_verify_ms=<median>` of `rounds` verifications at cost 10.
fn bcrypt_timing(rounds: u32) -> ExitCode {
    let hash = match bcrypt::hash("benchmark-password", 10) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("account-streams: bcrypt failed: {e}");
            return ExitCode::from(1);
        }
    };
    let mut ms: Vec<f64> = (0..rounds.max(1))
        .map(|_| {
            let t = std::time::Instant::now();
            let _ = bcrypt::verify("benchmark-password", &hash);
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    println!("bcrypt_verify_ms={:.2}", ms[ms.len() / 2]);
    ExitCode::SUCCESS
}

fn run(args: RunArgs) -> ExitCode {
    let settings = match Settings::from_args(args, settings::system_hostname) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("account-streams: invalid settings: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_logging(&settings.log_level, settings.log_format);
    telemetry::warn_if_trace_endpoint_set(settings.trace_endpoint.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("account-streams: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(account_streams::app::serve(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A configuration error is the operator's to fix: one plain line.
            // Anything else also goes to the (possibly JSON) log stream.
            if e.is_startup_config() {
                eprintln!("account-streams: {e}");
                return ExitCode::from(2);
            }
            tracing::error!(error = %e, "account-streams stopped");
            eprintln!("account-streams: {e}");
            ExitCode::from(1)
        }
    }
}

fn loadgen_main(args: LoadgenArgs) -> ExitCode {
    telemetry::init_logging("warn", LogFormat::Text);
    let strict = args.strict;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("account-streams loadgen: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(loadgen::run(args)) {
        Ok(report) => {
            print!("{}", report.stats.render(report.elapsed));
            let s = &report.stats;
            if s.produce_errors > 0 || (s.events_total() == 0 && s.commands_total() > 0) {
                ExitCode::from(1)
            } else if strict && (s.timeouts > 0 || s.unexpected > 0) {
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("account-streams loadgen: {e}");
            ExitCode::from(1)
        }
    }
}
