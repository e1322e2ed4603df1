//! The health chart: an SVG drawn here from the figures (numbers and integration names
//! only), so the page needs no charting library and no CDN.

use std::fmt::Write;

use super::source::Health;

const WIDTH: u32 = 640;
const HEIGHT: u32 = 240;
const TOP: u32 = 20;
const BOTTOM: u32 = 40;

/// A series of bars: its name, colour, and value of an integration.
type Series = (&'static str, &'static str, fn(&Health) -> u64);

/// Bars per integration over the last day: delivered, retried, dead-lettered.
pub fn svg(health: &[Health]) -> String {
    let series: [Series; 3] = [
        ("delivered", "#3a9d5d", |h| h.day.delivered),
        ("retried", "#e0a800", |h| h.day.retried.unwrap_or(0)),
        ("dead-lettered", "#b3261e", |h| h.day.dead_lettered),
    ];
    let max = health
        .iter()
        .flat_map(|h| series.iter().map(move |(_, _, f)| f(h)))
        .max()
        .unwrap_or(0)
        .max(1);
    let plot = HEIGHT - TOP - BOTTOM;
    let group = WIDTH / u32::try_from(health.len().max(1)).unwrap_or(1);
    let bar = group / 4;
    let mut svg = format!(
        r##"<svg id="health-chart" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="Last day per integration: delivered, retried, dead-lettered">"##
    );
    let _ = write!(
        svg,
        r##"<line x1="0" y1="{y}" x2="{WIDTH}" y2="{y}" stroke="#999"/>"##,
        y = HEIGHT - BOTTOM
    );
    for (g, h) in (0u32..).zip(health) {
        let x0 = g * group + bar / 2;
        for (s, (name, colour, value)) in (0u32..).zip(&series) {
            let value = value(h);
            let height = u32::try_from(u64::from(plot) * value / max).unwrap_or(plot);
            let _ = write!(
                svg,
                r##"<rect class="bar" data-integration="{i}" data-series="{name}" data-value="{value}" x="{x}" y="{y}" width="{w}" height="{height}" fill="{colour}"><title>{i} {name}: {value}</title></rect>"##,
                i = h.integration.as_str(),
                x = x0 + s * bar,
                y = HEIGHT - BOTTOM - height,
                w = bar - 2,
            );
        }
        let _ = write!(
            svg,
            r##"<text x="{x}" y="{y}" font-size="12" text-anchor="middle">{i}</text>"##,
            x = x0 + bar * 3 / 2,
            y = HEIGHT - BOTTOM + 16,
            i = h.integration.as_str(),
        );
    }
    for (s, (name, colour, _)) in (0u32..).zip(&series) {
        let x = 10 + s * 130;
        let _ = write!(
            svg,
            r##"<rect x="{x}" y="{y}" width="10" height="10" fill="{colour}"/><text x="{tx}" y="{ty}" font-size="12">{name}</text>"##,
            y = HEIGHT - 14,
            tx = x + 14,
            ty = HEIGHT - 5,
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::source::Figures;
    use nphooks_core::routing::Integration;

    #[test]
    fn given_figures_then_each_bar_carries_its_value_and_the_largest_is_tallest() {
        let day = |delivered| Figures {
            delivered,
            dead_lettered: 1,
            ..Figures::default()
        };
        let health = [
            Health {
                integration: Integration::Crm,
                hour: Figures::default(),
                day: day(4),
            },
            Health {
                integration: Integration::Slack,
                hour: Figures::default(),
                day: day(2),
            },
        ];
        let svg = svg(&health);
        assert!(svg.starts_with("<svg id=\"health-chart\""), "{svg}");
        assert!(svg.contains(r#"data-integration="crm" data-series="delivered" data-value="4""#));
        assert!(svg.contains(r#"data-integration="slack" data-series="delivered" data-value="2""#));
        let plot = HEIGHT - TOP - BOTTOM;
        assert!(
            svg.contains(&format!(
                r#"data-value="4" x="40" y="{}""#,
                HEIGHT - BOTTOM - plot
            )),
            "{svg}"
        );
    }
}
