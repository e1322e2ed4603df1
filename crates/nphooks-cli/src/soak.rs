//! `nphooks soak`: the seeded chaos soak on the in-memory adapters (the test kit's
//! `chaos` module), printed as one summary line; non-zero exit on any violation.

use std::process::ExitCode;

use nphooks_testkit::chaos::{SoakConfig, SoakReport, run_blocking};

#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// Webhooks the simulated NextPhone sends.
    #[arg(long, default_value_t = 100_000)]
    pub deliveries: usize,
    /// Faults per port call, 0 to 1 (also the sender's duplicate and lost-answer rate).
    #[arg(long, default_value_t = 0.05)]
    pub faults: f64,
    /// The seed that makes the run reproducible (default: from the clock, printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Leave crashes (handlers dropped at a port call) out of the faults.
    #[arg(long)]
    pub no_crashes: bool,
}

/// Runs the soak on its own thread (it needs a runtime with paused time).
pub fn run(args: &SoakArgs) -> anyhow::Result<SoakReport> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.faults),
        "--faults must be from 0 to 1, got {}",
        args.faults
    );
    let seed = args.seed.unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map_or(1, |d| d.as_secs())
    });
    let config = SoakConfig {
        deliveries: args.deliveries,
        fault_rate: args.faults,
        seed,
        crashes: !args.no_crashes,
        broken: None,
    };
    let soak = std::thread::spawn(move || run_blocking(config));
    let result = soak
        .join()
        .map_err(|_| anyhow::anyhow!("the soak (seed {seed}) panicked"))?;
    Ok(result?)
}

/// `nphooks soak`: the summary line on stdout, or the violations (with the seed) on stderr.
pub fn soak(args: &SoakArgs) -> anyhow::Result<ExitCode> {
    let report = run(args)?;
    println!("{}", report.summary());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_seed_then_the_soak_command_reports_nothing_lost_or_doubled() {
        let args = SoakArgs {
            deliveries: 300,
            faults: 0.05,
            seed: Some(3),
            no_crashes: false,
        };
        let report = run(&args).expect("the soak passes");
        assert_eq!((report.seed, report.deliveries), (3, 300));
        assert!(report.summary().contains(" lost=0 doubled=0 "));
        let bad = SoakArgs {
            faults: 1.5,
            ..args
        };
        let error = run(&bad).expect_err("out of range").to_string();
        assert!(error.contains("--faults"), "{error}");
    }
}
