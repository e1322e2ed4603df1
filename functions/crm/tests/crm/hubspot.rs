//! The HubSpot provider: contacts upserted by email or phone against a stand-in that
//! remembers what was created, the note attached to each, and what stops a delivery.

use std::sync::{Arc, Mutex};

use wiremock::Respond;

use super::*;

/// A HubSpot stand-in for contacts keyed by phone: search finds what create stored.
#[derive(Clone, Default)]
struct FakeContacts {
    /// (id, phone) of every contact created.
    contacts: Arc<Mutex<Vec<(String, String)>>>,
}

impl FakeContacts {
    fn list(&self) -> Vec<(String, String)> {
        self.contacts.lock().expect("lock").clone()
    }
}

struct Search(FakeContacts);
struct Create(FakeContacts);

impl Respond for Search {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let phone = &body["filterGroups"][0]["filters"][0]["value"];
        let results: Vec<Value> = self
            .0
            .list()
            .into_iter()
            .filter(|(_, p)| phone == p.as_str())
            .map(|(id, _)| json!({"id": id, "properties": {}}))
            .collect();
        ResponseTemplate::new(200)
            .set_body_json(json!({"total": results.len(), "results": results}))
    }
}

impl Respond for Create {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let phone = body["properties"]["phone"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut contacts = self.0.contacts.lock().expect("lock");
        let id = (700 + contacts.len()).to_string();
        contacts.push((id.clone(), phone));
        ResponseTemplate::new(201).set_body_json(json!({"id": id, "properties": {}}))
    }
}

async fn mount_notes(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/notes"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "901"})))
        .mount(server)
        .await;
}

#[tokio::test]
async fn given_hubspot_and_a_caller_with_email_when_delivered_then_the_contact_is_upserted_by_email_and_noted()
 {
    // GIVEN HubSpot's upsert and notes endpoints
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/upsert"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "COMPLETE",
            "results": [{"id": "501", "new": true, "properties": {}}]
        })))
        .mount(&server)
        .await;
    mount_notes(&server).await;

    // WHEN a demo request is delivered
    let result = hubspot_sink(&server.uri())
        .deliver(
            &Envelope::decode(&rendered_demo_request("call_hs", "Dana Whitfield")).expect("valid"),
        )
        .await;

    // THEN one upsert keyed by email, then one note on contact 501, both with the token
    assert!(
        matches!(&result, Ok(Delivered::Sent(what)) if what.contains("501") && what.contains("901")),
        "{result:?}"
    );
    let requests = received(&server).await;
    let paths: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.url.path()))
        .collect();
    assert_eq!(
        paths,
        [
            ("POST", "/crm/v3/objects/contacts/batch/upsert"),
            ("POST", "/crm/v3/objects/notes")
        ]
    );
    for request in &requests {
        assert_eq!(header(request, "authorization"), format!("Bearer {TOKEN}"));
    }
    insta::assert_json_snapshot!("hubspot_upsert", json_body(&requests[0]));
    insta::assert_json_snapshot!("hubspot_note", json_body(&requests[1]));
}

#[tokio::test]
async fn given_hubspot_and_a_phone_only_caller_when_delivered_twice_then_one_contact_is_created_then_updated()
 {
    // GIVEN a HubSpot whose search finds the contacts created so far
    let server = MockServer::start().await;
    let contacts = FakeContacts::default();
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .respond_with(Search(contacts.clone()))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts"))
        .respond_with(Create(contacts.clone()))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/crm/v3/objects/contacts/700"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "700"})))
        .mount(&server)
        .await;
    mount_notes(&server).await;
    let sink = hubspot_sink(&server.uri());
    let no_email = |w: &mut Value| {
        w["data"]["caller"]
            .as_object_mut()
            .expect("caller")
            .remove("email");
    };

    // WHEN the same caller's message is delivered, then delivered again
    let first = sink.deliver(&envelope_with("call_phone", no_email)).await;
    let second = sink.deliver(&envelope_with("call_phone", no_email)).await;

    // THEN search → create the first time, search → patch the second: one contact
    assert!(
        matches!(&first, Ok(Delivered::Sent(what)) if what.contains("700 created")),
        "{first:?}"
    );
    assert!(
        matches!(&second, Ok(Delivered::Sent(what)) if what.contains("700 updated")),
        "{second:?}"
    );
    assert_eq!(
        contacts.list(),
        [("700".to_owned(), "+15551234567".to_owned())]
    );
    let requests = received(&server).await;
    let paths: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.url.path()))
        .collect();
    assert_eq!(
        paths,
        [
            ("POST", "/crm/v3/objects/contacts/search"),
            ("POST", "/crm/v3/objects/contacts"),
            ("POST", "/crm/v3/objects/notes"),
            ("POST", "/crm/v3/objects/contacts/search"),
            ("PATCH", "/crm/v3/objects/contacts/700"),
            ("POST", "/crm/v3/objects/notes"),
        ]
    );
    insta::assert_json_snapshot!("hubspot_search", json_body(&requests[0]));
    insta::assert_json_snapshot!("hubspot_create", json_body(&requests[1]));
    assert_eq!(json_body(&requests[4]), json_body(&requests[1]));
}

#[tokio::test]
async fn given_hubspot_and_a_caller_without_email_or_phone_then_it_is_permanent_and_nothing_is_sent()
 {
    let server = MockServer::start().await;
    let anonymous = envelope_with("call_anon", |w| {
        w["data"]["caller"] = json!({"name": "Dana Whitfield"});
    });

    let result = hubspot_sink(&server.uri()).deliver(&anonymous).await;

    assert_eq!(
        result,
        Err(
            SinkError::permanent(FailureReason::UnusableData).with_detail(
                "caller has neither email nor phone; HubSpot needs one to key the contact"
            )
        )
    );
    assert!(received(&server).await.is_empty());
}

#[tokio::test]
async fn given_hubspot_fails_the_note_with_503_then_the_delivery_is_transient_and_names_the_step() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/upsert"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": [{"id": "501"}]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/notes"))
        .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
        .mount(&server)
        .await;

    let result = hubspot_sink(&server.uri())
        .deliver(&envelope("call_note", "Dana Whitfield"))
        .await;

    assert!(
        matches!(&result, Err(e) if e.retryable && e.to_string().contains("note create") && e.status.map(|s| s.as_u16()) == Some(503)),
        "{result:?}"
    );
}

#[test]
fn given_a_hostile_summary_then_the_note_body_is_html_escaped() {
    let note = crm::hubspot::note_body(
        "501",
        "<img src=x onerror=alert(1)> & \"quotes\"",
        "2026-11-26T15:30:00Z",
    );
    assert_eq!(
        note["properties"]["hs_note_body"],
        "&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quotes&quot;"
    );
}
