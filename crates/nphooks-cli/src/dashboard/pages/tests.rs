//! The pages' rendering: stored markup escaped, absent values blank, the empty filtered page, the chart.

use super::*;
use nphooks_core::webhook::Caller;

const COMMON: Common<'static> = Common {
    csrf: "token",
    read_only: false,
};

fn hostile_row() -> DeliveryRow {
    let state = IntegrationState {
        integration: Integration::Slack,
        badge: Badge::Failed,
        attempts: Some(1),
        reason: Some("<b onmouseover=alert(3)>x</b>".to_owned()),
        updated_at: Some(1),
        next_attempt_at: None,
    };
    DeliveryRow {
        key: "call.ended#<script>alert(1)</script>\"'".to_owned(),
        event: "call.ended".to_owned(),
        call_type: Some("\"><img src=x onerror=alert(2)>".to_owned()),
        received_at: 1,
        integrations: vec![state],
    }
}

#[test]
fn given_markup_in_stored_fields_when_pages_render_then_it_is_escaped() {
    let row = hostile_row();
    let page = Page {
        rows: vec![row.clone()],
        next: Some("<cursor>".to_owned()),
    };
    let one = Detail {
        row,
        caller: Caller::default(),
        received_at: Some("<i>".to_owned()),
    };
    for html in [
        deliveries(&page, &Filter::default(), None, COMMON),
        detail(&one, COMMON),
    ] {
        for raw in ["<script>alert", "<img", "<b onmouseover", "<i>", "<cursor>"] {
            assert!(!html.contains(raw), "{raw} unescaped in {html}");
        }
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{html}"
        );
    }
    assert_eq!(detail_href("a#<\"'> b"), "/deliveries/a%23%3C%22%27%3E%20b");
}

#[test]
fn given_absent_values_when_pages_render_then_they_are_blank_not_none() {
    let mut row = hostile_row();
    row.call_type = None;
    row.integrations[0].reason = None;
    let page = Page {
        rows: vec![row.clone()],
        next: None,
    };
    let one = Detail {
        row,
        caller: Caller::default(),
        received_at: None,
    };
    for html in [
        deliveries(&page, &Filter::default(), None, COMMON),
        detail(&one, COMMON),
    ] {
        assert!(!html.to_lowercase().contains(">none<"), "{html}");
        assert!(!html.contains("value=\"none\""), "{html}");
    }
}

#[test]
fn given_an_empty_filtered_page_then_it_points_to_older_ones_and_refreshes_itself() {
    let filter = Filter {
        event: Some("call.ended".to_owned()),
        ..Filter::default()
    };
    let page = Page {
        rows: Vec::new(),
        next: Some("call.ended#99".to_owned()),
    };
    let html = deliveries(&page, &filter, Some("call.ended#9"), COMMON);
    assert!(html.contains("match these filters on this page"), "{html}");
    assert!(html.contains("cursor=call.ended%2399\">Older"), "{html}");
    let api = "data-api=\"&#x2f;api&#x2f;deliveries?event=call.ended&amp;cursor=call.ended%239\"";
    assert!(html.contains(api), "{html}");
}

#[test]
fn given_health_when_rendered_then_the_chart_is_inserted_as_markup() {
    let html = health(&[], "<svg id=\"health-chart\"></svg>".to_owned(), COMMON);
    assert!(html.contains("<svg id=\"health-chart\"></svg>"), "{html}");
    assert!(html.contains("<table id=\"health\""), "{html}");
}
