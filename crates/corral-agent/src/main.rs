//! `corral-agent`: the agent that runs on each managed machine.
//!
//! Registration, credentials, health pings, Run Command and sessions arrive with their issues;
//! this first version only carries the command-line frame, so the crate is built and
//! compile-checked for Linux and Windows from the start.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(name = "corral-agent", version, about = "The Corral agent for managed machines")]
struct Cli {}

fn main() -> ExitCode {
    let _cli = Cli::parse();
    eprintln!(
        "corral-agent {}: no commands yet; registration (`corral-agent register`) comes with the hybrid-setup issue",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}
