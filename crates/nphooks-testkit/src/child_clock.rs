//! Child processes under the clock guard. `scripts/test.sh` runs the suite a second time
//! with each test binary's wall clock moved a year ahead by libfaketime, which travels in
//! the environment (`LD_PRELOAD`, `FAKETIME`). A binary under test that a test starts with
//! a cleared environment gets those variables back, so it runs on the test's clock; the
//! browser of the dashboard's test does not (Chromium spins under libfaketime), as a
//! user's browser keeps its own clock.

use std::process::Command;

/// The variables that carry the guard's clock.
const CLOCK_VARS: [&str; 3] = ["LD_PRELOAD", "FAKETIME", "FAKETIME_DONT_FAKE_MONOTONIC"];

/// `command` on this process's clock: the guard's variables, if set, passed on.
pub fn same_clock(command: &mut Command) -> &mut Command {
    for name in CLOCK_VARS {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command
}

/// `command` on the machine's real clock, whatever this process runs on.
pub fn real_clock(command: &mut Command) -> &mut Command {
    for name in CLOCK_VARS {
        command.env_remove(name);
    }
    command
}
