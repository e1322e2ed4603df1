//! A simulated NextPhone: signs each webhook as the sender does, sends it to the
//! receiver's handler, and retries a delivery that did not get a 2xx after 5 min, 15 min
//! and 1 h, then gives up. It sometimes sends a delivery twice and sometimes loses our
//! 2xx answer (so it retries a request we accepted).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::time::Duration;

use lambda_http::{Body, Request};
use nphooks_core::delivery::DeliveryKey;
use nphooks_core::routing::{Integration, RoutingTable};
use nphooks_core::signature::{SIGNATURE_HEADER, sign};
use nphooks_core::webhook::{WEBHOOK_PATH, Webhook};
use nphooks_samples::{TEST_API_KEY, TEST_WEBHOOK_SECRET};
use serde_json::json;

use super::rng::SplitMix64;

/// The sender's waits before retries 1, 2 and 3; then it gives up.
pub const RETRY_SCHEDULE: [Duration; 3] = [
    Duration::from_secs(300),
    Duration::from_secs(900),
    Duration::from_secs(3600),
];

/// The kinds of webhook sent, so routes differ: (event, call type).
const KINDS: [(&str, Option<&str>); 8] = [
    ("call.ended", Some("demo_request")),
    ("call.ended", Some("quote_request")),
    ("call.ended", Some("emergency")),
    ("call.ended", Some("support")),
    ("message.collected", Some("voicemail")),
    ("call.answered", None),
    ("data.collected", None),
    ("transcript.ready", None),
];

/// One webhook and what happened to it.
#[derive(Debug)]
pub struct Sent {
    pub body: Vec<u8>,
    pub signature: String,
    pub key: String,
    /// The integrations the default routing table names for it.
    pub route: BTreeSet<Integration>,
    pub attempts: u32,
    /// We answered 2xx at least once (whether or not the sender heard it).
    pub accepted: bool,
    /// The sender gave up: why its last attempt failed.
    pub gave_up: Option<String>,
}

/// The sender's side of the soak.
#[derive(Debug)]
pub struct NextPhone {
    rng: SplitMix64,
    rate: f64,
    pub webhooks: Vec<Sent>,
    /// Due (epoch ms, sequence) → (webhook, attempt; 0 = a duplicate send).
    due: BinaryHeap<Reverse<(u64, u64, usize, u32)>>,
    sequence: u64,
    pub retries: u64,
    pub duplicates: u64,
    pub lost_answers: u64,
    pub by_key: BTreeMap<String, usize>,
}

impl NextPhone {
    /// `count` webhooks, one every `spacing` from `start_ms`; duplicates and lost answers
    /// at `rate`.
    pub fn new(seed: u64, count: usize, rate: f64, start_ms: u64, spacing: Duration) -> Self {
        let mut rng = SplitMix64::new(seed ^ 0x5EED_CAFE_F00D_0001);
        let routes = RoutingTable::default_table();
        let spacing = u64::try_from(spacing.as_millis()).unwrap_or(1);
        let mut sender = NextPhone {
            rng: SplitMix64::new(seed.rotate_left(17)),
            rate,
            webhooks: Vec::with_capacity(count),
            due: BinaryHeap::new(),
            sequence: 0,
            retries: 0,
            duplicates: 0,
            lost_answers: 0,
            by_key: BTreeMap::new(),
        };
        for i in 0..count {
            let (event, call_type) = KINDS[rng.below(KINDS.len() as u64) as usize];
            let at = start_ms + i as u64 * spacing;
            let body = json!({
                "event": event,
                "timestamp": nphooks_core::rfc3339(nphooks_core::clock::from_epoch_millis(at)),
                "data": {
                    "call_id": format!("soak-{seed}-{i}"),
                    "call_type": call_type,
                    "caller": {"phone": "+15550000000", "name": "Soak Caller"},
                    "custom_fields": {"n": i.to_string()}
                }
            })
            .to_string()
            .into_bytes();
            let webhook = Webhook::parse(&body).expect("a valid webhook");
            let key = DeliveryKey::for_webhook(&webhook).as_str().to_owned();
            sender.by_key.insert(key.clone(), i);
            sender.webhooks.push(Sent {
                signature: sign(TEST_WEBHOOK_SECRET, &body),
                route: routes.route_for(&webhook),
                body,
                key,
                attempts: 0,
                accepted: false,
                gave_up: None,
            });
            sender.schedule(at, i, 1);
        }
        sender
    }

    fn schedule(&mut self, at: u64, webhook: usize, attempt: u32) {
        self.sequence += 1;
        self.due
            .push(Reverse((at, self.sequence, webhook, attempt)));
    }

    /// When the next send is due (epoch ms).
    pub fn next_due(&self) -> Option<u64> {
        self.due.peek().map(|Reverse((at, ..))| *at)
    }

    /// The next send due by `now`: (webhook, attempt; 0 = a duplicate send).
    pub fn pop_due(&mut self, now: u64) -> Option<(usize, u32)> {
        match self.due.peek() {
            Some(Reverse((at, ..))) if *at <= now => {
                let Reverse((_, _, webhook, attempt)) = self.due.pop()?;
                Some((webhook, attempt))
            }
            _ => None,
        }
    }

    /// The signed request, as NextPhone sends it.
    pub fn request(&self, webhook: usize) -> Request {
        let sent = &self.webhooks[webhook];
        lambda_http::http::Request::builder()
            .method("POST")
            .uri(WEBHOOK_PATH)
            .header("authorization", format!("Bearer {TEST_API_KEY}"))
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, &sent.signature)
            .body(Body::Binary(sent.body.clone()))
            .expect("a valid request")
    }

    /// What the sender makes of our answer to `attempt` (`status` `None`: no answer,
    /// the Lambda died), at `now`.
    pub fn answered(&mut self, webhook: usize, attempt: u32, status: Option<u16>, now: u64) {
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        if ok {
            self.webhooks[webhook].accepted = true;
        }
        if attempt == 0 {
            return;
        }
        self.webhooks[webhook].attempts = attempt;
        if attempt == 1 && self.rng.chance(self.rate) {
            self.duplicates += 1;
            self.schedule(now + 500, webhook, 0);
        }
        let heard = ok && !self.rng.chance(self.rate);
        if ok && !heard {
            self.lost_answers += 1;
        }
        if heard {
            return;
        }
        match RETRY_SCHEDULE.get(attempt as usize - 1) {
            Some(wait) => {
                self.retries += 1;
                let wait = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
                self.schedule(now + wait, webhook, attempt + 1);
            }
            None => {
                let cause = match status {
                    None => "no answer (receiver crashed)".to_owned(),
                    Some(s) if ok => format!("{s} answer lost"),
                    Some(s) => format!("answered {s}"),
                };
                self.webhooks[webhook].gave_up = Some(cause);
            }
        }
    }
}
