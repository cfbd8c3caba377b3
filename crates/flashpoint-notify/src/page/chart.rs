//! The incident page's chart: inline SVG, two panels (posts, negative posts) over time, each with the baseline's
//! band and expectation, and a marker at every event of the incident.
//!
//! Drawn from the newest event's `timeline` (the incident's series with its baseline). A step missing from the
//! series (points further apart than their neighbours) breaks the lines and the band, so nothing is drawn
//! across time that was not measured. Events without a timeline (schema v2, or a producer that does not fill it)
//! still get a chart: each event's own window, as dots, with no band. Styling is by class only (the page's one
//! stylesheet), so the page needs no inline `style` attribute under its Content-Security-Policy.

use super::store::Logged;
use flashpoint_core::event::TimelinePoint;
use flashpoint_core::time::{format_rfc3339, Millis};
use std::fmt::Write;

const WIDTH: f64 = 1000.0;
const PANEL: f64 = 190.0;
const GAP: f64 = 44.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;

/// One series of the chart: what is drawn for each point.
struct Series<'a> {
    name: &'static str,
    class: &'static str,
    value: &'a dyn Fn(&TimelinePoint) -> f64,
    expected: &'a dyn Fn(&TimelinePoint) -> f64,
    band: &'a dyn Fn(&TimelinePoint) -> [f64; 2],
}

/// The chart for an incident's events (sorted by `seq`, not empty).
pub fn svg(events: &[Logged]) -> String {
    let latest = &events.last().expect("an incident has an event").event;
    let fallback: Vec<TimelinePoint>;
    let (points, measured) = if latest.timeline.is_empty() {
        fallback = events
            .iter()
            .map(|l| {
                let e = &l.event;
                TimelinePoint {
                    window_end: e.window_end,
                    volume: e.counts.volume,
                    negative: e.counts.negative,
                    volume_expected: f64::NAN,
                    volume_band: [f64::NAN; 2],
                    negative_expected: f64::NAN,
                    negative_band: [f64::NAN; 2],
                }
            })
            .collect();
        (&fallback[..], false)
    } else {
        (&latest.timeline[..], true)
    };
    let marks: Vec<Millis> = events.iter().map(|l| l.event.window_end).collect();
    let from = points.iter().map(|p| p.window_end).chain(marks.iter().copied()).min().unwrap_or(0);
    let to = points.iter().map(|p| p.window_end).chain(marks.iter().copied()).max().unwrap_or(0);
    let (from, to) = if to > from { (from, to) } else { (from - 300_000, to + 300_000) };
    let x = |t: Millis| LEFT + (t - from) as f64 / (to - from) as f64 * (WIDTH - LEFT - RIGHT);
    let height = TOP + 2.0 * PANEL + GAP + 44.0;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" \
         aria-label=\"posts and negative posts against the baseline\">"
    );
    let series = [
        Series {
            name: "posts",
            class: "volume",
            value: &|p| p.volume as f64,
            expected: &|p| p.volume_expected,
            band: &|p| p.volume_band,
        },
        Series {
            name: "negative posts",
            class: "negative",
            value: &|p| p.negative as f64,
            expected: &|p| p.negative_expected,
            band: &|p| p.negative_band,
        },
    ];
    let runs = runs(points);
    for (i, ser) in series.iter().enumerate() {
        let top = TOP + i as f64 * (PANEL + GAP);
        let max = points
            .iter()
            .flat_map(|p| [(ser.value)(p), (ser.band)(p)[1], (ser.expected)(p)])
            .filter(|v| v.is_finite())
            .fold(1.0_f64, f64::max)
            * 1.1;
        let y = |v: f64| top + PANEL - v.max(0.0) / max * PANEL;
        let _ = write!(s, "<g class=\"panel {}\">", ser.class);
        let _ = write!(s, "<text class=\"title\" x=\"{LEFT}\" y=\"{:.1}\">{}</text>", top - 8.0, ser.name);
        // Grid and y labels: 0, half, top.
        for f in [0.0, 0.5, 1.0] {
            let (v, x2) = (max / 1.1 * f, WIDTH - RIGHT);
            let (gy, ty, label) = (y(v), y(v) + 4.0, short_number(v));
            let _ = write!(
                s,
                "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{x2:.1}\" y1=\"{gy:.1}\" y2=\"{gy:.1}\"/>\
                 <text class=\"tick\" x=\"{:.1}\" y=\"{ty:.1}\" text-anchor=\"end\">{label}</text>",
                LEFT - 6.0
            );
        }
        if measured {
            for run in &runs {
                let pts = &points[run.clone()];
                let upper: Vec<String> = pts.iter().map(|p| xy(x(p.window_end), y((ser.band)(p)[1]))).collect();
                let lower: Vec<String> = pts.iter().rev().map(|p| xy(x(p.window_end), y((ser.band)(p)[0]))).collect();
                let _ = write!(s, "<polygon class=\"band\" points=\"{} {}\"/>", upper.join(" "), lower.join(" "));
                let exp: Vec<String> = pts.iter().map(|p| xy(x(p.window_end), y((ser.expected)(p)))).collect();
                let _ = write!(s, "<polyline class=\"expected\" points=\"{}\"/>", exp.join(" "));
                let obs: Vec<String> = pts.iter().map(|p| xy(x(p.window_end), y((ser.value)(p)))).collect();
                let _ = write!(s, "<polyline class=\"series {}\" points=\"{}\"/>", ser.class, obs.join(" "));
            }
        } else {
            for p in points {
                let _ = write!(
                    s,
                    "<circle class=\"series {}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\"><title>{} {}</title></circle>",
                    ser.class,
                    x(p.window_end),
                    y((ser.value)(p)),
                    (ser.value)(p),
                    ser.name
                );
            }
        }
        // The incident's events: a rule across the panel and a labelled dot on it.
        for l in events {
            let e = &l.event;
            let mx = x(e.window_end);
            let _ = write!(
                s,
                "<line class=\"marker {}\" x1=\"{mx:.1}\" x2=\"{mx:.1}\" y1=\"{top:.1}\" y2=\"{:.1}\"/>\
                 <circle class=\"marker sev-{}\" cx=\"{mx:.1}\" cy=\"{:.1}\" r=\"4\"><title>{} #{} · {} · {}</title></circle>",
                super::html::kind_str(e.kind),
                top + PANEL,
                e.severity.as_str(),
                top + 4.0,
                super::html::kind_str(e.kind),
                e.seq,
                e.severity.as_str(),
                format_rfc3339(e.window_end)
            );
        }
        let (x2, ay) = (WIDTH - RIGHT, top + PANEL);
        let _ = write!(s, "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{x2:.1}\" y1=\"{ay:.1}\" y2=\"{ay:.1}\"/>");
        s.push_str("</g>");
    }
    // Time labels under the lower panel: about six, at whole minutes.
    let base = TOP + 2.0 * PANEL + GAP;
    for k in 0..=5 {
        let t = from + (to - from) * k / 5;
        let t = t - t.rem_euclid(60_000);
        if t < from {
            continue;
        }
        let _ = write!(
            s,
            "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x(t),
            base + 18.0,
            &format_rfc3339(t)[11..16]
        );
    }
    let legend = if measured {
        "lines: observed · dashed: baseline expectation · shaded: baseline band (±2 sd) · rules: the incident's events"
    } else {
        "dots: each event's window (these events carry no timeline, so no baseline band) · rules: the incident's events"
    };
    let _ = write!(s, "<text class=\"legend\" x=\"{LEFT}\" y=\"{:.1}\">{legend}</text>", base + 26.0 + 8.0);
    s.push_str("</svg>");
    s
}

fn xy(x: f64, y: f64) -> String {
    format!("{x:.1},{y:.1}")
}

/// `1234` → `1.2k`.
fn short_number(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 1000.0 {
        format!("{:.1}k", v / 1000.0)
    } else if (v - v.round()).abs() < 0.05 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.1}")
    }
}

/// The timeline's unbroken runs (`format::line_runs`, the rule the email chart follows too).
fn runs(points: &[TimelinePoint]) -> Vec<std::ops::Range<usize>> {
    crate::format::line_runs(&points.iter().map(|p| p.window_end).collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(min: i64) -> TimelinePoint {
        TimelinePoint {
            window_end: min * 60_000,
            volume: 10,
            negative: 2,
            volume_expected: 8.0,
            volume_band: [4.0, 12.0],
            negative_expected: 1.0,
            negative_band: [0.0, 3.0],
        }
    }

    #[test]
    fn lines_break_at_missing_steps_only() {
        let pts: Vec<_> = [0, 1, 2, 3, 30, 31, 32].into_iter().map(at).collect();
        assert_eq!(runs(&pts), [0..4, 4..7]);
        // Merged steps (coarser spacing earlier) are not gaps.
        let pts: Vec<_> = [0, 4, 8, 12, 13, 14, 15].into_iter().map(at).collect();
        assert_eq!(runs(&pts), vec![std::ops::Range { start: 0, end: 7 }]);
        assert_eq!(runs(&[at(0)]), vec![std::ops::Range { start: 0, end: 1 }]);
        assert!(runs(&[]).is_empty());
    }
}
