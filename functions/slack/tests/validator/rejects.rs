//! The validator rejects each over-limit or invalid shape, one rule at a time: every
//! case starts from a message it accepts and breaks exactly one thing.

use serde_json::{Value, json};

use super::*;

fn valid() -> Value {
    json!({
        "text": "New call",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Call", "emoji": true}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Caller*\nDana"}]},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Summary*\nHello"}},
            {"type": "divider"},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": "call.ended"},
                {"type": "image", "image_url": "https://example.com/a.png", "alt_text": "logo"}
            ]}
        ]
    })
}

/// The one violation found after `change` is applied to the valid message.
fn only_violation(change: impl FnOnce(&mut Value)) -> Violation {
    let mut message = valid();
    change(&mut message);
    let mut found = validate(&message).expect_err("the validator must reject it");
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

fn too_long(at: &str, chars: usize, max: usize) -> Violation {
    Violation::TooLong {
        at: at.into(),
        chars,
        max,
    }
}

fn too_many(at: &str, count: usize, max: usize) -> Violation {
    Violation::TooMany {
        at: at.into(),
        count,
        max,
    }
}

#[test]
fn given_the_baseline_then_it_is_accepted() {
    assert_eq!(validate(&valid()), Ok(()));
}

#[test]
fn given_51_blocks_then_the_block_count_is_rejected() {
    let found = only_violation(|m| {
        let divider = json!({"type": "divider"});
        let blocks = m["blocks"].as_array_mut().expect("blocks");
        blocks.resize(51, divider);
    });
    assert_eq!(found, too_many("blocks", 51, 50));
}

#[test]
fn given_a_header_of_151_characters_then_it_is_rejected() {
    let found = only_violation(|m| m["blocks"][0]["text"]["text"] = json!("h".repeat(151)));
    assert_eq!(found, too_long("blocks[0].text.text", 151, 150));
}

#[test]
fn given_a_mrkdwn_header_then_its_text_type_is_rejected() {
    let found = only_violation(|m| m["blocks"][0]["text"]["type"] = json!("mrkdwn"));
    let expected = Violation::WrongTextType {
        at: "blocks[0].text.type".into(),
        found: "mrkdwn".into(),
    };
    assert_eq!(found, expected);
}

#[test]
fn given_section_text_of_3001_characters_then_it_is_rejected() {
    let found = only_violation(|m| m["blocks"][2]["text"]["text"] = json!("s".repeat(3001)));
    assert_eq!(found, too_long("blocks[2].text.text", 3001, 3000));
}

#[test]
fn given_a_field_of_2001_characters_then_it_is_rejected() {
    let found = only_violation(|m| m["blocks"][1]["fields"][0]["text"] = json!("f".repeat(2001)));
    assert_eq!(found, too_long("blocks[1].fields[0].text", 2001, 2000));
}

#[test]
fn given_11_fields_in_a_section_then_they_are_rejected() {
    let found = only_violation(|m| {
        let field = json!({"type": "mrkdwn", "text": "x"});
        m["blocks"][1]["fields"] = Value::Array(vec![field; 11]);
    });
    assert_eq!(found, too_many("blocks[1].fields", 11, 10));
}

#[test]
fn given_11_context_elements_then_they_are_rejected() {
    let found = only_violation(|m| {
        let element = json!({"type": "plain_text", "text": "x"});
        m["blocks"][4]["elements"] = Value::Array(vec![element; 11]);
    });
    assert_eq!(found, too_many("blocks[4].elements", 11, 10));
}

#[test]
fn given_a_context_element_of_3001_characters_then_it_is_rejected() {
    let found = only_violation(|m| m["blocks"][4]["elements"][0]["text"] = json!("c".repeat(3001)));
    assert_eq!(found, too_long("blocks[4].elements[0].text", 3001, 3000));
}

#[test]
fn given_a_fallback_over_40000_characters_then_it_is_rejected() {
    let found = only_violation(|m| m["text"] = json!("t".repeat(40_001)));
    assert_eq!(found, too_long("text", 40_001, 40_000));
}

#[test]
fn given_more_than_12000_characters_of_block_text_then_the_total_is_rejected() {
    let found = only_violation(|m| {
        let field = json!({"type": "mrkdwn", "text": "f".repeat(1_300)});
        m["blocks"][1]["fields"] = Value::Array(vec![field; 10]);
    });
    // 13,000 in the fields, plus the header (4), summary (15) and context (10).
    assert_eq!(found, too_long("blocks.*.text", 13_029, 12_000));
}

#[test]
fn given_an_empty_text_then_it_is_rejected() {
    let found = only_violation(|m| m["blocks"][1]["fields"][0]["text"] = json!(""));
    let expected = Violation::Empty {
        at: "blocks[1].fields[0].text".into(),
    };
    assert_eq!(found, expected);
}

#[test]
fn given_an_unknown_block_type_then_it_is_rejected() {
    let found = only_violation(|m| m["blocks"][3]["type"] = json!("banner"));
    let expected = Violation::UnknownType {
        at: "blocks[3].type".into(),
        found: "banner".into(),
    };
    assert_eq!(found, expected);
}

#[test]
fn given_an_unknown_text_type_then_it_is_rejected() {
    let found = only_violation(|m| m["blocks"][4]["elements"][0]["type"] = json!("markdown"));
    let expected = Violation::WrongTextType {
        at: "blocks[4].elements[0].type".into(),
        found: "markdown".into(),
    };
    assert_eq!(found, expected);
}

#[test]
fn given_emoji_on_mrkdwn_then_the_key_is_rejected() {
    let found = only_violation(|m| m["blocks"][2]["text"]["emoji"] = json!(true));
    let expected = Violation::UnexpectedKey {
        at: "blocks[2].text.emoji".into(),
    };
    assert_eq!(found, expected);
}

#[test]
fn given_a_section_without_text_or_fields_then_it_is_rejected() {
    let found = only_violation(|m| m["blocks"][2] = json!({"type": "section"}));
    let expected = Violation::Missing {
        at: "blocks[2].text".into(),
    };
    assert_eq!(found, expected);
}

#[test]
fn given_an_empty_context_then_it_is_rejected() {
    let found = only_violation(|m| m["blocks"][4]["elements"] = json!([]));
    let expected = Violation::Empty {
        at: "blocks[4].elements".into(),
    };
    assert_eq!(found, expected);
}

#[test]
fn given_an_image_without_alt_text_then_it_is_rejected() {
    let found = only_violation(|m| {
        let image = m["blocks"][4]["elements"][1]
            .as_object_mut()
            .expect("image");
        image.remove("alt_text");
    });
    let expected = Violation::Missing {
        at: "blocks[4].elements[1].alt_text".into(),
    };
    assert_eq!(found, expected);
}

#[test]
fn given_a_block_id_of_256_characters_then_it_is_rejected() {
    let found = only_violation(|m| m["blocks"][3]["block_id"] = json!("b".repeat(256)));
    assert_eq!(found, too_long("blocks[3].block_id", 256, 255));
}

#[test]
fn given_a_number_where_text_belongs_then_it_is_rejected() {
    let found = only_violation(|m| m["blocks"][2]["text"]["text"] = json!(42));
    let expected = Violation::NotAString {
        at: "blocks[2].text.text".into(),
    };
    assert_eq!(found, expected);
}

#[test]
fn given_fields_that_are_not_a_list_then_they_are_rejected() {
    let found = only_violation(|m| m["blocks"][1]["fields"] = json!({"type": "mrkdwn"}));
    let expected = Violation::NotAList {
        at: "blocks[1].fields".into(),
    };
    assert_eq!(found, expected);
}
