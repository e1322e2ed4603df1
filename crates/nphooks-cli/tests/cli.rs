//! The `nphooks` binary end to end: `demo` offline, `serve` + `send`, the moto-backed
//! flow with a DLQ, redrive and replay, and `events generate`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nphooks_core::envelope::Envelope;
use nphooks_core::webhook::EventKind;
use nphooks_samples::{TEST_WEBHOOK_SECRET, queue_message, webhook_body};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

#[path = "cli/harness.rs"]
mod harness;

use harness::*;

#[test]
fn given_a_clean_directory_when_demo_runs_offline_then_all_four_integrations_are_done_and_previews_match_the_processors()
 {
    let dir = temp_dir("demo");

    let output = run(nphooks(&dir).arg("demo"));

    let out = text(&output);
    assert!(output.status.success(), "{out}");
    for integration in ["crm", "email", "slack", "notify"] {
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with(integration) && l.contains("✓ done")),
            "{integration} not done: {out}"
        );
    }
    let previews = dir.join("outbox/call.ended_call_8f14e45fceea167a");
    // What the processors' own builders produce for the same webhook.
    let body = serde_json::to_string_pretty(&webhook_body(EventKind::CallEnded)).expect("json");
    let message = queue_message(&body, std::time::SystemTime::now());
    let envelope = Envelope::decode(message.body()).expect("valid");
    assert_eq!(
        http_body(&previews.join("slack.http")),
        slack::slack_message(&envelope)
    );
    assert_eq!(
        http_body(&previews.join("crm.http")),
        crm::generic_body(&envelope)
    );
    let mut notification = http_body(&previews.join("notify.http"));
    let mut expected = notify::notification(&envelope);
    // received_at is when the demo ran.
    notification["timestamp"] = serde_json::Value::Null;
    expected["timestamp"] = serde_json::Value::Null;
    assert_eq!(notification, expected);
    let mail = std::fs::read_to_string(previews.join("email.eml")).expect("email preview");
    assert!(
        mail.contains("To: \"Dana Whitfield\" <dana.whitfield@example.com>"),
        "{mail}"
    );
    assert!(
        mail.contains("Subject: Your Acme demo request is confirmed"),
        "{mail}"
    );
    assert!(
        mail.contains("Content-Type: text/plain") && mail.contains("Content-Type: text/html"),
        "{mail}"
    );
}

#[test]
fn given_serve_when_send_signs_correctly_wrongly_and_repeats_then_one_set_of_effects() {
    let dir = temp_dir("serve");
    let port = free_port();
    let mut serve = nphooks(&dir);
    serve.args(["serve", "--port", &port.to_string()]);
    let _server = start_serve(serve, port);
    let url = format!("http://127.0.0.1:{port}/webhook/nextphone");
    let send = |secret: &str| {
        run(nphooks(&dir).args(["send", "call.ended", "--url", &url, "--secret", secret]))
    };

    // A correct signature: accepted, and four previews appear.
    let accepted = send(TEST_WEBHOOK_SECRET);
    assert!(accepted.status.success(), "{}", text(&accepted));
    assert!(
        text(&accepted).contains("\"status\":\"accepted\""),
        "{}",
        text(&accepted)
    );
    let outbox = dir.join("outbox");
    wait_for("four previews", Duration::from_secs(20), || {
        files_under(&outbox).len() == 4
    });

    // A wrong secret: 401, reported, non-zero exit.
    let rejected = send("not-the-secret");
    assert!(!rejected.status.success());
    assert!(text(&rejected).contains("401"), "{}", text(&rejected));

    // The same event twice more, within the record's 30 s lease: 409 (the sender
    // retries later), no new effects.
    for _ in 0..2 {
        let again = send(TEST_WEBHOOK_SECRET);
        assert!(!again.status.success());
        assert!(
            text(&again).contains("\"error\":\"in_progress\""),
            "{}",
            text(&again)
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(files_under(&outbox).len(), 4, "one set of effects");
}

#[tokio::test(flavor = "multi_thread")]
async fn given_moto_when_notify_fails_permanently_then_dlq_redrive_and_replay_behave() {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL: run scripts/test.sh (it starts moto)");
    let dir = temp_dir("moto");
    let prefix = format!("clitest{}", std::process::id());
    let aws = |command: &mut Command| {
        command
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("NPHOOKS_LOCAL_PREFIX", &prefix);
    };
    // The sales endpoint rejects everything at first.
    let sales = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string("bad"))
        .mount(&sales)
        .await;
    let requests = || {
        let sales = &sales;
        async move { sales.received_requests().await.map_or(0, |r| r.len()) }
    };

    let mut init = nphooks(&dir);
    aws(init.arg("init-local"));
    let init = tokio::task::spawn_blocking(move || run(&mut init))
        .await
        .expect("joined");
    assert!(init.status.success(), "{}", text(&init));

    let port = free_port();
    let mut serve = nphooks(&dir);
    aws(&mut serve);
    serve
        .args([
            "serve",
            "--aws",
            "--port",
            &port.to_string(),
            "--visibility",
            "2",
        ])
        .env("NOTIFY_URL", format!("{}/hooks/sales", sales.uri()))
        .env(
            "NOTIFY_SIGNING_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )
        .env("NPHOOKS_ALLOW_HTTP", "1");
    let _server = start_serve(serve, port);

    let url = format!("http://127.0.0.1:{port}/webhook/nextphone");
    let mut send = nphooks(&dir);
    send.args([
        "send",
        "call.ended",
        "--url",
        &url,
        "--secret",
        TEST_WEBHOOK_SECRET,
    ]);
    let sent = tokio::task::spawn_blocking(move || run(&mut send))
        .await
        .expect("joined");
    assert!(sent.status.success(), "{}", text(&sent));
    let key = "call.ended#call_8f14e45fceea167a";

    // The three previews flow through SQS and DynamoDB; notify ends in its DLQ.
    let outbox = dir.join("outbox");
    let started = Instant::now();
    let dead = loop {
        let mut list = nphooks(&dir);
        aws(list.args(["dlq", "list", "notify"]));
        let listed = tokio::task::spawn_blocking(move || run(&mut list))
            .await
            .expect("joined");
        if text(&listed).contains("1 message(s)") {
            break text(&listed);
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "notify never reached its DLQ: {}",
            text(&listed)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(dead.contains(key) && dead.contains("400"), "{dead}");
    assert_eq!(
        files_under(&outbox).len(),
        3,
        "crm, email and slack previews"
    );
    assert_eq!(requests().await, 1, "a permanent failure is not retried");

    // The fault clears; the DLQ is redriven; it takes effect exactly once.
    sales.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&sales)
        .await;
    let mut redrive = nphooks(&dir);
    aws(redrive.args(["dlq", "redrive", "notify"]));
    let redriven = tokio::task::spawn_blocking(move || run(&mut redrive))
        .await
        .expect("joined");
    assert!(
        text(&redriven).contains("moved 1 message"),
        "{}",
        text(&redriven)
    );
    let started = Instant::now();
    while requests().await < 1 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the redriven message never took effect"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(requests().await, 1, "exactly once after the redrive");

    // Replay: a completed effect runs again only when forced.
    let replay = |force: bool| {
        let mut command = nphooks(&dir);
        aws(command.args(["replay", key, "--integration", "notify"]));
        command
            .env("NOTIFY_URL", format!("{}/hooks/sales", sales.uri()))
            .env(
                "NOTIFY_SIGNING_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            )
            .env("NPHOOKS_ALLOW_HTTP", "1");
        if force {
            command.arg("--force");
        }
        tokio::task::spawn_blocking(move || run(&mut command))
    };
    let unforced = replay(false).await.expect("joined");
    assert!(
        text(&unforced).contains("already completed"),
        "{}",
        text(&unforced)
    );
    assert_eq!(requests().await, 1);
    let forced = replay(true).await.expect("joined");
    assert!(forced.status.success(), "{}", text(&forced));
    assert_eq!(requests().await, 2, "forced replay runs it again");
}

#[test]
fn given_a_dotenv_file_when_demo_runs_then_its_settings_apply() {
    let dir = temp_dir("dotenv");
    std::fs::write(
        dir.join(".env"),
        "EMAIL_BUSINESS_NAME=\"Zephyr Plumbing\"\nEMAIL_FROM=\"Zephyr <hi@zephyr.example>\"\n",
    )
    .expect(".env");

    let output = run(nphooks(&dir).arg("demo"));

    assert!(output.status.success(), "{}", text(&output));
    let mail =
        std::fs::read_to_string(dir.join("outbox/call.ended_call_8f14e45fceea167a/email.eml"))
            .expect("email preview");
    assert!(
        mail.contains("Subject: Your Zephyr Plumbing demo request is confirmed"),
        "{mail}"
    );
    assert!(mail.contains("From: Zephyr <hi@zephyr.example>"), "{mail}");
}

#[test]
fn given_a_copy_of_events_when_generate_runs_then_nothing_changes() {
    let dir = temp_dir("events");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
    let copy = dir.join("events");
    for file in files_under(&source) {
        let target = copy.join(file.strip_prefix(&source).expect("under events"));
        std::fs::create_dir_all(target.parent().expect("parent")).expect("dir");
        std::fs::copy(&file, &target).expect("copy");
    }

    let output = run(nphooks(&dir).args(["events", "generate", "--dir", "events"]));

    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains(", 0 changed"), "{}", text(&output));
    assert_eq!(
        files_under(&copy).len(),
        files_under(&source).len(),
        "no file added"
    );
}

#[test]
fn given_bad_arguments_then_each_error_is_one_sentence_naming_the_fix() {
    let dir = temp_dir("errors");
    let no_secret = run(nphooks(&dir).args(["send", "call.ended"]));
    assert!(!no_secret.status.success());
    assert!(
        text(&no_secret).contains("pass --secret or set NEXTPHONE_WEBHOOK_SECRETS"),
        "{}",
        text(&no_secret)
    );

    let unreachable = run(nphooks(&dir).args([
        "send",
        "call.ended",
        "--secret",
        "s",
        "--url",
        &format!("http://127.0.0.1:{}/webhook/nextphone", free_port()),
    ]));
    assert!(!unreachable.status.success());
    assert!(
        text(&unreachable).contains("nphooks serve"),
        "{}",
        text(&unreachable)
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = listener.local_addr().expect("addr").port();
    let in_use = run(nphooks(&dir).args(["serve", "--port", &taken.to_string()]));
    assert!(!in_use.status.success());
    assert!(
        text(&in_use).contains(&format!("port {taken} is already in use")),
        "{}",
        text(&in_use)
    );

    let no_moto = run(nphooks(&dir).arg("init-local"));
    assert!(
        text(&no_moto).contains("AWS_ENDPOINT_URL is not set"),
        "{}",
        text(&no_moto)
    );

    let dotenv = temp_dir("bad-dotenv");
    std::fs::write(dotenv.join(".env"), "EMAIL_BUSINESS_NAME=Two Words\n").expect(".env");
    let unreadable = run(nphooks(&dotenv).arg("demo"));
    assert!(!unreadable.status.success());
    assert!(
        text(&unreadable).contains(".env could not be read"),
        "{}",
        text(&unreadable)
    );

    let unknown = run(nphooks(&dir).args(["dlq", "list", "fax"]));
    assert!(
        text(&unknown).contains("use crm, email, slack, notify or callback"),
        "{}",
        text(&unknown)
    );
}
