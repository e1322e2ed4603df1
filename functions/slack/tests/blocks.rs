//! The Slack message stays within Block Kit's documented limits whatever the caller
//! sent: every message here must pass the validator in `validator/`, whose own tests
//! prove it rejects each over-limit shape.

mod validator;

use nphooks_core::envelope::Envelope;
use nphooks_testkit::{demo_request, envelope_for};
use serde_json::{Map, Value, json};
use slack::slack_message;
use validator::validate;

/// The Slack message for a `call.ended` webhook carrying `data`.
fn message_for(data: Value) -> Value {
    let webhook = json!({"event": "call.ended", "timestamp": "2026-11-26T15:30:00Z", "data": data});
    let envelope = Envelope::decode(&envelope_for(&webhook.to_string())).expect("valid");
    let message = slack_message(&envelope);
    assert_eq!(validate(&message), Ok(()), "{message:#}");
    message
}

fn data_with(custom: Map<String, Value>, summary: &str) -> Value {
    json!({
        "call_id": "call_limits",
        "call_type": "demo_request",
        "caller": {"name": "Dana Whitfield", "phone": "+15551234567"},
        "ai_summary": summary,
        "custom_fields": custom,
    })
}

/// `count` custom fields `field_01`… each holding `value`.
fn custom_fields(count: usize, value: &str) -> Map<String, Value> {
    (1..=count)
        .map(|i| (format!("field_{i:03}"), json!(value)))
        .collect()
}

fn blocks(message: &Value) -> &Vec<Value> {
    message["blocks"].as_array().expect("blocks")
}

/// Texts of the custom fields: every fields section after the caller's.
fn custom_texts(message: &Value) -> Vec<&str> {
    let sections = blocks(message).iter().filter(|b| b.get("fields").is_some());
    sections
        .skip(1)
        .flat_map(|b| b["fields"].as_array().expect("fields"))
        .map(|f| f["text"].as_str().expect("text"))
        .collect()
}

fn summary_text(message: &Value) -> &str {
    let section = blocks(message)
        .iter()
        .find(|b| b.get("text").is_some() && b["type"] == "section");
    section.expect("a summary section")["text"]["text"]
        .as_str()
        .expect("text")
}

fn context_texts(message: &Value) -> Vec<&str> {
    let context = blocks(message).last().expect("a context block");
    assert_eq!(context["type"], "context");
    let elements = context["elements"].as_array().expect("elements");
    elements
        .iter()
        .map(|e| e["text"].as_str().expect("text"))
        .collect()
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

/// A summary of exactly 2,900 characters, 200 of them `&`.
fn summary_with_ampersands() -> String {
    let mut summary: String = (0..200).map(|i| format!("Q&A #{i:03}, ok ")).collect();
    summary.push_str(&"x".repeat(2900 - chars(&summary)));
    summary
}

#[test]
fn given_the_issue_10_payload_then_one_valid_message_matches_its_snapshot() {
    let summary = summary_with_ampersands();
    assert_eq!((chars(&summary), summary.matches('&').count()), (2900, 200));
    let mut custom = custom_fields(13, "short");
    custom.insert("angle_brackets".into(), json!("<".repeat(1800)));

    let message = message_for(data_with(custom, &summary));

    let fields = custom_texts(&message);
    assert_eq!(fields.len(), 14, "every custom field is shown");
    let sections: Vec<usize> = blocks(&message)
        .iter()
        .filter_map(|b| b.get("fields").and_then(Value::as_array).map(Vec::len))
        .collect();
    assert_eq!(
        sections,
        [2, 10, 4],
        "caller, then custom fields 10 per section"
    );
    let angles = fields[0];
    assert!(angles.starts_with("*Angle brackets*\n&lt;&lt;"), "{angles}");
    assert!(
        angles.ends_with("&lt;…") && !angles.contains('<'),
        "{angles}"
    );
    assert!((1990..=2000).contains(&chars(angles)), "{}", chars(angles));
    let summary = summary_text(&message);
    assert!(
        summary.starts_with("*Summary*\nQ&amp;A #000, ok "),
        "{summary}"
    );
    assert!(
        (2995..=3000).contains(&chars(summary)),
        "{}",
        chars(summary)
    );
    assert!(summary.ends_with('…'));
    insta::assert_json_snapshot!("issue_10", message);
}

#[test]
fn given_a_call_type_with_ampersand_and_brackets_then_the_header_shows_them_literally() {
    let data = json!({"call_id": "c-amp", "call_type": "Q&A <urgent> >_follow-up"});

    let message = message_for(data);

    let header = &blocks(&message)[0]["text"];
    assert_eq!(header["type"], "plain_text");
    assert_eq!(header["text"], "📞 Q&A <urgent> > follow up");
    let fallback = message["text"].as_str().expect("text");
    assert!(
        fallback.starts_with("New Q&amp;A &lt;urgent&gt; &gt; follow up call"),
        "{fallback}"
    );
}

#[test]
fn given_a_long_call_type_with_controls_then_the_header_is_clean_and_150_characters() {
    let call_type = format!(
        "\u{1b}[2J{}\r\n\u{202E}{}",
        "x".repeat(100),
        "y".repeat(200)
    );

    let message = message_for(json!({"call_id": "c-long", "call_type": call_type}));

    let header = blocks(&message)[0]["text"]["text"].as_str().expect("text");
    assert_eq!(chars(header), 150, "{header}");
    assert!(!header.chars().any(char::is_control), "{header:?}");
    assert!(!header.contains('\u{202E}'), "{header:?}");
    assert!(
        header.starts_with("📞 [2Jxxx") && header.ends_with("y…"),
        "{header}"
    );
}

#[test]
fn given_a_call_type_of_controls_only_then_the_header_names_the_event() {
    let message = message_for(json!({"call_id": "c-ctl", "call_type": "\u{7}\u{1b}"}));

    assert_eq!(blocks(&message)[0]["text"]["text"], "📞 call.ended");
}

#[test]
fn given_more_text_than_slack_takes_then_the_summary_shrinks_first() {
    let value = "a".repeat(700);
    let message = message_for(data_with(custom_fields(12, &value), &"b".repeat(2900)));

    let fields = custom_texts(&message);
    assert_eq!(fields.len(), 12);
    assert!(
        fields.iter().all(|f| f.ends_with(&value)),
        "fields kept whole"
    );
    let summary = summary_text(&message);
    assert!(
        chars(summary) <= 1000 && chars(summary) > 300,
        "{}",
        chars(summary)
    );
    assert!(summary.ends_with('…'));
}

#[test]
fn given_40_fields_of_1800_brackets_then_values_are_cut_and_all_are_shown() {
    let message = message_for(data_with(custom_fields(40, &"<".repeat(1800)), "Hi"));

    let fields = custom_texts(&message);
    assert_eq!(fields.len(), 40);
    // `*Field 001*\n` and at most 150 characters of value.
    assert!(
        fields.iter().all(|f| chars(f) <= 162 && f.ends_with('…')),
        "{fields:?}"
    );
    assert_eq!(
        summary_text(&message),
        "*Summary*\nHi",
        "a short summary is kept"
    );
    assert_eq!(context_texts(&message).len(), 1, "nothing hidden");
}

#[test]
fn given_100_fields_of_1800_brackets_then_the_rest_are_counted_not_refused() {
    let message = message_for(data_with(custom_fields(100, &"<".repeat(1800)), "Hi"));

    let shown = custom_texts(&message).len();
    assert!((20..100).contains(&shown), "{shown}");
    let context = context_texts(&message);
    assert_eq!(
        context[1],
        format!("+{} more fields not shown", 100 - shown)
    );
}

#[test]
fn given_600_custom_fields_then_50_blocks_at_most_and_the_rest_are_counted() {
    let message = message_for(data_with(custom_fields(600, "v"), "Hi"));

    assert_eq!(blocks(&message).len(), 50);
    let shown = custom_texts(&message).len();
    assert_eq!(
        shown, 460,
        "46 sections of 10 beside header, caller, summary, context"
    );
    assert_eq!(context_texts(&message)[1], "+140 more fields not shown");
}

#[test]
fn given_mentions_in_custom_fields_then_they_stay_escaped() {
    let mut custom = Map::new();
    custom.insert(
        "<!channel>".into(),
        json!("<!here> <@U024BE7LH> & <https://x.test|y>"),
    );

    let message = message_for(data_with(custom, "<!everyone>"));

    let text = message.to_string();
    for raw in [
        "<!channel>",
        "<!here>",
        "<@U024BE7LH>",
        "<!everyone>",
        "<https",
    ] {
        assert!(!text.contains(raw), "{raw} in {text}");
    }
    assert_eq!(
        custom_texts(&message)[0],
        "*&lt;!channel&gt;*\n&lt;!here&gt; &lt;@U024BE7LH&gt; &amp; &lt;https://x.test|y&gt;"
    );
}

#[test]
fn given_a_caller_of_10000_brackets_then_fields_and_fallback_stay_short() {
    let data = json!({"call_id": "c-name", "caller": {"name": "<".repeat(10_000), "email": "&".repeat(5_000)}});

    let message = message_for(data);

    let fallback = message["text"].as_str().expect("text");
    assert!(chars(fallback) <= 3000, "{}", chars(fallback));
    assert!(fallback.contains("&lt;…"), "{fallback}");
    let caller = blocks(&message)[1]["fields"][0]["text"]
        .as_str()
        .expect("text");
    assert!(
        chars(caller) <= 2000 && caller.ends_with("&lt;…"),
        "{caller}"
    );
}

#[test]
fn given_the_existing_fixtures_then_every_message_is_valid() {
    let names = [
        "Dana Whitfield",
        "<!channel> <@U024BE7LH> *Bob* & <script>",
        "",
    ];
    for name in names {
        let envelope =
            Envelope::decode(&envelope_for(&demo_request("c-fixture", name))).expect("valid");
        let message = slack_message(&envelope);
        assert_eq!(validate(&message), Ok(()), "{message:#}");
    }
    let minimal = r#"{"event":"message.collected","data":{"call_id":"c-min"}}"#;
    let envelope = Envelope::decode(&envelope_for(minimal)).expect("valid");
    assert_eq!(validate(&slack_message(&envelope)), Ok(()));
}
