//! A receiver configured with a public secret never starts, so it accepts nothing signed
//! with it: the real binary stops at start-up naming the variable (issue 9).

use std::process::Command;

use nphooks_samples::TEST_WEBHOOK_SECRET;

/// Starts the receiver binary with `secret` as its only signing secret and no AWS
/// behind it; returns its exit success and what it printed.
fn start_receiver(secret: &str, local_mode: bool) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_receiver"));
    command
        .env_clear()
        .env("NEXTPHONE_WEBHOOK_SECRETS", secret)
        .env("IDEMPOTENCY_TABLE", "nphooks-idempotency")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        // Unroutable, so a receiver that did start would fail fast instead of serving.
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9");
    nphooks_testkit::child_clock::same_clock(&mut command);
    for integration in nphooks_core::routing::Integration::ALL {
        command.env(integration.queue_url_var(), "https://sqs.example/q");
    }
    if local_mode {
        command.env("NPHOOKS_ALLOW_HTTP", "1");
    }
    let output = command.output().expect("the receiver binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn given_a_placeholder_or_repository_secret_then_the_receiver_refuses_to_start_naming_it() {
    for (secret, local_mode, expected) in [
        (
            "REPLACE_ME",
            false,
            "NEXTPHONE_WEBHOOK_SECRETS entry 1 holds a placeholder",
        ),
        (
            "REPLACE_ME",
            true,
            "NEXTPHONE_WEBHOOK_SECRETS entry 1 holds a placeholder",
        ),
        (
            TEST_WEBHOOK_SECRET,
            false,
            "NEXTPHONE_WEBHOOK_SECRETS entry 1 holds a value published",
        ),
    ] {
        // GIVEN a receiver whose signing secret is public; WHEN it starts
        let (started, output) = start_receiver(secret, local_mode);
        // THEN it stops, naming the variable and where to fix it, never the value
        assert!(!started, "{secret}: {output}");
        assert!(output.contains(expected), "{secret}: {output}");
        assert!(output.contains("Secrets Manager"), "{output}");
        assert!(
            !output.contains(secret),
            "the value is not echoed: {output}"
        );
    }
}

#[test]
fn given_the_test_secret_in_local_mode_then_configuration_passes_and_start_up_goes_on() {
    // The same binary gets past configuration, then fails to reach the (absent) runtime API.
    let (started, output) = start_receiver(TEST_WEBHOOK_SECRET, true);
    assert!(!started);
    assert!(!output.contains("NEXTPHONE_WEBHOOK_SECRETS"), "{output}");
}
