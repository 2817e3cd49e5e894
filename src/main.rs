//! `zonesweep`: the command-line program.

mod data;
mod evaluate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "zonesweep", version, about = "Monte Carlo uncertainty analysis of carbon-neutral spatial zoning")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One deterministic run of the model chain at nominal parameters.
    Evaluate(evaluate::EvaluateArgs),
    /// The ridge trace: standardized coefficients, VIFs and R² over the K grid.
    RidgeTrace(evaluate::RidgeTraceArgs),
    /// Datasets: validate one, or generate the synthetic demonstration panel.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Model configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the default configuration (the paper's values) as TOML.
    Default,
}

/// Options shared by every command that runs the model.
#[derive(clap::Args, Clone, Debug)]
pub struct ModelArgs {
    /// Dataset folder (units.csv, panel.csv, optional units.geojson); the
    /// embedded synthetic demonstration dataset when omitted.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Model configuration (TOML) overriding any subset of `zonesweep config default`.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Evaluate(args) => evaluate::evaluate(&args),
        Command::RidgeTrace(args) => evaluate::ridge_trace(&args),
        Command::Data(command) => data::run(command),
        Command::Config(ConfigCommand::Default) => {
            print!("{}", zonesweep_shared::config::Config::default_toml());
            Ok(())
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
