//! The sample events in `events/`: current with their generator, and each answered as documented.

mod common;

use std::path::{Path, PathBuf};

use common::{memory_deps, request_from_event, status_and_json};
use nphooks_samples::{event_files, receiver_samples};

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

#[test]
fn given_the_generator_when_compared_with_events_dir_then_files_are_current() {
    let dir = events_dir();
    let update = std::env::var_os("NPHOOKS_UPDATE_EVENTS").is_some();
    let mut stale = Vec::new();
    for (path, contents) in event_files() {
        let file = dir.join(&path);
        if update {
            std::fs::create_dir_all(file.parent().expect("has a parent")).expect("create dir");
            std::fs::write(&file, &contents).expect("write event");
        } else if std::fs::read_to_string(&file).ok().as_deref() != Some(contents.as_str()) {
            stale.push(path);
        }
    }
    assert!(
        stale.is_empty(),
        "events/ is out of date ({stale:?}); regenerate with NPHOOKS_UPDATE_EVENTS=1 cargo test -p receiver --test events"
    );
}

#[tokio::test]
async fn given_every_receiver_event_file_when_handled_then_it_gets_its_documented_answer() {
    let samples = receiver_samples();
    let mut files: Vec<_> = std::fs::read_dir(events_dir().join("receiver"))
        .expect("events/receiver exists")
        .map(|entry| entry.expect("readable").path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 7,
        "expected the six event types and a bad signature, found {files:?}"
    );

    for file in files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name")
            .to_owned();
        let sample = samples
            .iter()
            .find(|s| s.file_name == name)
            .unwrap_or_else(|| panic!("events/receiver/{name} is not documented by the generator"));
        let event: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("readable")).expect("JSON");

        // GIVEN a fresh receiver; WHEN the event arrives
        let deps = memory_deps();
        let (status, body) =
            status_and_json(receiver::handle(&deps, request_from_event(&event)).await);

        // THEN the answer is the documented one
        assert_eq!(status, sample.expected_status, "{name}: {body}");
        let outcome = if status == 200 {
            &body["status"]
        } else {
            &body["error"]
        };
        assert_eq!(outcome, sample.expected_outcome, "{name}: {body}");
        if sample.expected_outcome == "accepted" {
            let queues = body["queues"].as_array().expect("queues listed");
            assert_eq!(
                deps.queue.total(),
                queues.len(),
                "{name}: one message per routed queue"
            );
        }
        if status == 401 {
            assert_eq!(deps.ledger.operations(), 0, "{name}: no store access");
            assert_eq!(deps.queue.total(), 0, "{name}: nothing enqueued");
        }
    }
}
