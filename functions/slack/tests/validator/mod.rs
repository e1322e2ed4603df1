//! A validator of Block Kit's documented limits for a message payload, written from
//! Slack's reference (docs.slack.dev/reference/block-kit), independent of the crate's
//! own constants so that a wrong constant there is caught here.
//!
//! It checks: the top-level `text` (40,000, where Slack truncates) and `blocks` (at
//! most 50); each block's type among the documented ones and its keys; `block_id`
//! (255); header text is `plain_text`, 1–150; section `text` 1–3,000, `fields` 1–10
//! of 1–2,000 each, and text or fields present; context `elements` 1–10, each an
//! image or a text object; every text object's type, its keys, 1–3,000 characters;
//! and, as a budget of our own, all block text together at most 12,000 (Slack
//! refuses longer messages with `msg_blocks_too_long`, a limit it does not document
//! for sections). Lengths are counted in characters.

#[cfg(test)]
mod rejects;

use serde_json::{Map, Value};

pub const MESSAGE_TEXT_MAX: usize = 40_000;
pub const BLOCKS_MAX: usize = 50;
pub const BLOCK_ID_MAX: usize = 255;
pub const HEADER_TEXT_MAX: usize = 150;
pub const SECTION_TEXT_MAX: usize = 3_000;
pub const FIELDS_MAX: usize = 10;
pub const FIELD_TEXT_MAX: usize = 2_000;
pub const CONTEXT_ELEMENTS_MAX: usize = 10;
pub const TEXT_OBJECT_MAX: usize = 3_000;
pub const BLOCKS_TEXT_MAX: usize = 12_000;

/// Block types Slack documents for Block Kit.
const BLOCK_TYPES: [&str; 13] = [
    "actions",
    "context",
    "context_actions",
    "divider",
    "file",
    "header",
    "image",
    "input",
    "markdown",
    "rich_text",
    "section",
    "table",
    "video",
];

/// One way a payload breaks a documented rule; `at` is a path such as
/// `blocks[3].fields[2].text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    NotAnObject {
        at: String,
    },
    Missing {
        at: String,
    },
    NotAString {
        at: String,
    },
    NotAList {
        at: String,
    },
    UnknownType {
        at: String,
        found: String,
    },
    UnexpectedKey {
        at: String,
    },
    WrongTextType {
        at: String,
        found: String,
    },
    TooLong {
        at: String,
        chars: usize,
        max: usize,
    },
    Empty {
        at: String,
    },
    TooMany {
        at: String,
        count: usize,
        max: usize,
    },
}

/// Every violation in `message`, or `Ok` when Slack's documented limits all hold.
pub fn validate(message: &Value) -> Result<(), Vec<Violation>> {
    let mut found = Vec::new();
    let mut check = Checker { found: &mut found };
    check.message(message);
    if found.is_empty() { Ok(()) } else { Err(found) }
}

struct Checker<'a> {
    found: &'a mut Vec<Violation>,
}

impl Checker<'_> {
    fn message(&mut self, message: &Value) {
        let Some(map) = self.object(message, "") else {
            return;
        };
        self.keys(map, "", &["text", "blocks", "mrkdwn"]);
        if let Some(text) = map.get("text") {
            self.string(text, "text", 0, MESSAGE_TEXT_MAX);
        }
        let Some(blocks) = map.get("blocks") else {
            if !map.contains_key("text") {
                self.found.push(Violation::Missing { at: "text".into() });
            }
            return;
        };
        let Some(blocks) = blocks.as_array() else {
            self.found.push(Violation::NotAList {
                at: "blocks".into(),
            });
            return;
        };
        self.count(blocks.len(), "blocks", BLOCKS_MAX);
        for (i, block) in blocks.iter().enumerate() {
            self.block(block, &format!("blocks[{i}]"));
        }
        let total: usize = blocks.iter().map(text_chars).sum();
        if total > BLOCKS_TEXT_MAX {
            self.too_long("blocks.*.text", total, BLOCKS_TEXT_MAX);
        }
    }

    fn block(&mut self, block: &Value, at: &str) {
        let Some(map) = self.object(block, at) else {
            return;
        };
        if let Some(id) = map.get("block_id") {
            self.string(id, &format!("{at}.block_id"), 1, BLOCK_ID_MAX);
        }
        let kind = map.get("type").and_then(Value::as_str).unwrap_or_default();
        match kind {
            "header" => {
                self.keys(map, at, &["type", "block_id", "text"]);
                match map.get("text") {
                    Some(text) => {
                        self.text_object(text, &format!("{at}.text"), HEADER_TEXT_MAX, true)
                    }
                    None => self.missing(&format!("{at}.text")),
                }
            }
            "section" => self.section(map, at),
            "context" => {
                self.keys(map, at, &["type", "block_id", "elements"]);
                let elements = self.list(map, at, "elements", CONTEXT_ELEMENTS_MAX);
                for (i, element) in elements.iter().enumerate() {
                    let at = format!("{at}.elements[{i}]");
                    if element.get("type").and_then(Value::as_str) == Some("image") {
                        self.image(element, &at);
                    } else {
                        self.text_object(element, &at, TEXT_OBJECT_MAX, false);
                    }
                }
            }
            "divider" => self.keys(map, at, &["type", "block_id"]),
            other if BLOCK_TYPES.contains(&other) => {}
            other => self.found.push(Violation::UnknownType {
                at: format!("{at}.type"),
                found: other.to_owned(),
            }),
        }
    }

    fn section(&mut self, map: &Map<String, Value>, at: &str) {
        self.keys(
            map,
            at,
            &["type", "block_id", "text", "fields", "accessory", "expand"],
        );
        if !map.contains_key("text") && !map.contains_key("fields") {
            self.missing(&format!("{at}.text"));
        }
        if let Some(text) = map.get("text") {
            self.text_object(text, &format!("{at}.text"), SECTION_TEXT_MAX, false);
        }
        if map.contains_key("fields") {
            let fields = self.list(map, at, "fields", FIELDS_MAX);
            for (i, field) in fields.iter().enumerate() {
                self.text_object(field, &format!("{at}.fields[{i}]"), FIELD_TEXT_MAX, false);
            }
        }
    }

    /// A `plain_text` or `mrkdwn` object of 1 to `max` characters.
    fn text_object(&mut self, value: &Value, at: &str, max: usize, plain_only: bool) {
        let Some(map) = self.object(value, at) else {
            return;
        };
        let kind = map.get("type").and_then(Value::as_str).unwrap_or_default();
        let allowed: &[&str] = match kind {
            "plain_text" => &["type", "text", "emoji"],
            "mrkdwn" if !plain_only => &["type", "text", "verbatim"],
            other => {
                self.found.push(Violation::WrongTextType {
                    at: format!("{at}.type"),
                    found: other.to_owned(),
                });
                return;
            }
        };
        self.keys(map, at, allowed);
        match map.get("text") {
            Some(text) => self.string(text, &format!("{at}.text"), 1, max.min(TEXT_OBJECT_MAX)),
            None => self.missing(&format!("{at}.text")),
        }
    }

    fn image(&mut self, value: &Value, at: &str) {
        let Some(map) = self.object(value, at) else {
            return;
        };
        self.keys(map, at, &["type", "image_url", "slack_file", "alt_text"]);
        match map.get("alt_text") {
            Some(alt) => self.string(alt, &format!("{at}.alt_text"), 1, 2_000),
            None => self.missing(&format!("{at}.alt_text")),
        }
        match map.get("image_url") {
            Some(url) => self.string(url, &format!("{at}.image_url"), 1, 3_000),
            None if map.contains_key("slack_file") => {}
            None => self.missing(&format!("{at}.image_url")),
        }
    }

    /// The array at `map[key]`: present, 1 to `max` items.
    fn list<'v>(
        &mut self,
        map: &'v Map<String, Value>,
        at: &str,
        key: &str,
        max: usize,
    ) -> &'v [Value] {
        let at = format!("{at}.{key}");
        let Some(items) = map.get(key) else {
            self.missing(&at);
            return &[];
        };
        let Some(items) = items.as_array() else {
            self.found.push(Violation::NotAList { at });
            return &[];
        };
        if items.is_empty() {
            self.found.push(Violation::Empty { at });
        } else {
            self.count(items.len(), &at, max);
        }
        items
    }

    fn object<'v>(&mut self, value: &'v Value, at: &str) -> Option<&'v Map<String, Value>> {
        let map = value.as_object();
        if map.is_none() {
            self.found
                .push(Violation::NotAnObject { at: at.to_owned() });
        }
        map
    }

    fn keys(&mut self, map: &Map<String, Value>, at: &str, allowed: &[&str]) {
        for key in map.keys().filter(|key| !allowed.contains(&key.as_str())) {
            self.found.push(Violation::UnexpectedKey {
                at: format!("{at}.{key}"),
            });
        }
    }

    fn string(&mut self, value: &Value, at: &str, min: usize, max: usize) {
        let Some(text) = value.as_str() else {
            self.found.push(Violation::NotAString { at: at.to_owned() });
            return;
        };
        let chars = text.chars().count();
        if chars < min {
            self.found.push(Violation::Empty { at: at.to_owned() });
        } else if chars > max {
            self.too_long(at, chars, max);
        }
    }

    fn count(&mut self, count: usize, at: &str, max: usize) {
        if count > max {
            self.found.push(Violation::TooMany {
                at: at.to_owned(),
                count,
                max,
            });
        }
    }

    fn too_long(&mut self, at: &str, chars: usize, max: usize) {
        self.found.push(Violation::TooLong {
            at: at.to_owned(),
            chars,
            max,
        });
    }

    fn missing(&mut self, at: &str) {
        self.found.push(Violation::Missing { at: at.to_owned() });
    }
}

/// Characters of every `text` string in a block.
pub fn text_chars(value: &Value) -> usize {
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(key, v)| match (key.as_str(), v) {
                ("text", Value::String(s)) => s.chars().count(),
                _ => text_chars(v),
            })
            .sum(),
        Value::Array(items) => items.iter().map(text_chars).sum(),
        _ => 0,
    }
}
