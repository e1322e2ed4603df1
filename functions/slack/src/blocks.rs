//! Block Kit layout of a call, held within Slack's limits.
//!
//! Every text object is cut to its own limit; custom fields fill sections of at most
//! ten; what still does not fit is reduced in a fixed order — the summary first, then
//! the length of custom field values, then custom fields from the end, counted in a
//! "+N more fields" note — so a message is never refused for its size.

use serde_json::{Value, json};

use crate::text::{Mrkdwn, plain_text};

/// Slack's documented limits (Block Kit reference), in characters.
pub mod limits {
    /// Blocks in one message.
    pub const BLOCKS: usize = 50;
    /// `text` of a section.
    pub const SECTION_TEXT: usize = 3_000;
    /// Each of a section's `fields`.
    pub const FIELD_TEXT: usize = 2_000;
    /// `fields` in one section.
    pub const FIELDS_PER_SECTION: usize = 10;
    /// A header's `plain_text`.
    pub const HEADER_TEXT: usize = 150;
    /// `elements` of a context block.
    pub const CONTEXT_ELEMENTS: usize = 10;
    /// Any text object, so each context element.
    pub const TEXT_OBJECT: usize = 3_000;
    /// Our cap on the top-level `text` fallback. Slack truncates at 40,000; the
    /// fallback is what a notification shows, one line is enough.
    pub const FALLBACK_TEXT: usize = 3_000;
    /// Our cap on all text in the blocks together. Slack documents none for sections,
    /// but refuses large messages with `msg_blocks_too_long` (reported from about
    /// 12,000 characters of text); this leaves room for the JSON around the text.
    pub const BLOCKS_TEXT: usize = 11_000;
}

/// Label of the summary section: `*Summary*\n` comes before the summary text.
const SUMMARY_LABEL: &str = "Summary";
/// Longest custom field label, escaped.
const LABEL_MAX: usize = 100;

/// How far the variable parts are cut at one step of the reduction.
#[derive(Debug, Clone, Copy)]
struct Trim {
    summary: usize,
    value: usize,
}

/// The fixed reduction order: the summary first, then custom field values. After the
/// last step, custom fields that still do not fit are counted, not shown.
const TRIMS: [Trim; 5] = [
    Trim {
        summary: limits::SECTION_TEXT,
        value: limits::FIELD_TEXT,
    },
    Trim {
        summary: 1_000,
        value: limits::FIELD_TEXT,
    },
    Trim {
        summary: 300,
        value: limits::FIELD_TEXT,
    },
    Trim {
        summary: 300,
        value: 500,
    },
    Trim {
        summary: 300,
        value: 150,
    },
];

/// A labelled mrkdwn field: `*label*\nvalue`.
#[derive(Debug, Clone)]
pub struct Field {
    label: Mrkdwn,
    value: Mrkdwn,
}

impl Field {
    /// A field whose label and value are already escaped.
    pub fn new(label: Mrkdwn, value: Mrkdwn) -> Self {
        Field { label, value }
    }

    /// A field from caller-supplied label and value, escaped here.
    fn raw(label: &str, value: &str, max_value: usize) -> Self {
        Field {
            label: Mrkdwn::escape(label, LABEL_MAX),
            value: Mrkdwn::escape(value, max_value),
        }
    }

    fn text(&self, max: usize) -> Value {
        let text = Mrkdwn::trusted(format!("*{}*\n{}", self.label, self.value));
        mrkdwn(&text, max)
    }
}

/// What a call's message says, before it is laid out.
#[derive(Debug, Clone)]
pub struct Card {
    /// Raw, shown literally in the header.
    pub title: String,
    /// Caller, phone, email, duration: escaped and short.
    pub caller: Vec<Field>,
    /// Raw.
    pub summary: Option<String>,
    /// Raw label and value of each custom field, in the sender's order.
    pub custom: Vec<(String, String)>,
    /// The context line under the message.
    pub footer: Mrkdwn,
    /// The top-level `text`: what notifications and old clients show.
    pub fallback: Mrkdwn,
}

impl Card {
    /// The Slack message: `{"text", "blocks"}` within every limit above.
    pub fn render(&self) -> Value {
        let blocks = TRIMS
            .iter()
            .map(|trim| self.blocks(*trim, None))
            .find(|blocks| text_chars(blocks) <= limits::BLOCKS_TEXT)
            .unwrap_or_else(|| self.blocks(TRIMS[TRIMS.len() - 1], Some(limits::BLOCKS_TEXT)));
        json!({
            "text": self.fallback.cut(limits::FALLBACK_TEXT).as_str(),
            "blocks": blocks,
        })
    }

    /// The blocks at one trim; with a `budget`, custom fields stop where the text of
    /// all blocks would exceed it.
    fn blocks(&self, trim: Trim, budget: Option<usize>) -> Vec<Value> {
        let title = plain_text(&format!("📞 {}", self.title), limits::HEADER_TEXT);
        let mut blocks = vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": title, "emoji": true}}),
            fields_section(
                self.caller
                    .iter()
                    .take(limits::FIELDS_PER_SECTION)
                    .map(|f| f.text(limits::FIELD_TEXT)),
            ),
        ];
        if let Some(summary) = &self.summary {
            let field = Field::raw(SUMMARY_LABEL, summary, trim.summary);
            let max = trim.summary.min(limits::SECTION_TEXT);
            blocks.push(json!({"type": "section", "text": field.text(max)}));
        }

        let fields: Vec<Value> = self
            .custom
            .iter()
            .map(|(label, value)| Field::raw(label, value, trim.value).text(limits::FIELD_TEXT))
            .collect();
        // Room for sections between what is already there and the context block.
        let room = limits::BLOCKS.saturating_sub(blocks.len() + 1) * limits::FIELDS_PER_SECTION;
        let mut shown = fields.len().min(room);
        if let Some(budget) = budget {
            // The context line with its note, at most: the note's length is bounded.
            let mut used = text_chars(&blocks) + self.footer.chars() + 40;
            shown = fields[..shown]
                .iter()
                .take_while(|field| {
                    used += text_chars(std::slice::from_ref(*field));
                    used <= budget
                })
                .count();
        }
        for chunk in fields[..shown].chunks(limits::FIELDS_PER_SECTION) {
            blocks.push(fields_section(chunk.iter().cloned()));
        }
        blocks.push(self.context(fields.len() - shown));
        blocks
    }

    fn context(&self, hidden: usize) -> Value {
        let mut elements = vec![mrkdwn(&self.footer, limits::TEXT_OBJECT)];
        if hidden > 0 {
            let plural = if hidden == 1 { "" } else { "s" };
            let note = format!("+{hidden} more field{plural} not shown");
            elements.push(mrkdwn(&Mrkdwn::trusted(note), limits::TEXT_OBJECT));
        }
        elements.truncate(limits::CONTEXT_ELEMENTS);
        json!({"type": "context", "elements": elements})
    }
}

/// A mrkdwn text object cut to `max` characters.
fn mrkdwn(text: &Mrkdwn, max: usize) -> Value {
    json!({"type": "mrkdwn", "text": text.cut(max).as_str()})
}

fn fields_section(fields: impl Iterator<Item = Value>) -> Value {
    json!({"type": "section", "fields": fields.collect::<Vec<_>>()})
}

/// Characters of every `text` string in `blocks`, however deep.
fn text_chars(blocks: &[Value]) -> usize {
    fn walk(value: &Value) -> usize {
        match value {
            Value::Object(map) => map
                .iter()
                .map(|(key, v)| match v {
                    Value::String(s) if key == "text" => s.chars().count(),
                    other => walk(other),
                })
                .sum(),
            Value::Array(items) => items.iter().map(walk).sum(),
            _ => 0,
        }
    }
    blocks.iter().map(walk).sum()
}
