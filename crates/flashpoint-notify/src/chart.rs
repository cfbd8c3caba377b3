//! The inline PNG chart of an email: the incident's posts per step (bars) against their usual range (the
//! baseline band, grey), and its negative posts (red line), with the incident's span shaded. A gap in the
//! series (`format::line_runs`: steps the event does not carry, or silence between events) breaks the line and
//! the band rather than drawing a slope across time nobody observed.
//!
//! Drawn with `plotters` into an RGB buffer and encoded with `png`. Labels use a 14 kB ASCII subset of DejaVu
//! Sans bundled in the crate (assets/, Bitstream Vera licence), registered once, so no system fonts or
//! fontconfig are needed. The points are the event's timeline (v3), or for a v2 event the entity's spike events
//! seen by the notifier, without a band.

use crate::message::Point;
use flashpoint_core::time::{format_rfc3339, Millis};
use plotters::prelude::*;
use std::sync::Once;

pub const WIDTH: u32 = 640;
pub const HEIGHT: u32 = 260;
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans-ascii.ttf");
static REGISTER: Once = Once::new();

#[derive(Debug, thiserror::Error)]
#[error("chart: {0}")]
pub struct ChartError(String);

fn hhmm(ms: Millis) -> String {
    let s = format_rfc3339(ms);
    s.get(11..16).unwrap_or("").to_string()
}

/// PNG bytes of the chart for `points` with the incident from `start` to `end`.
pub fn render(points: &[Point], start: Millis, end: Millis) -> Result<Vec<u8>, ChartError> {
    REGISTER.call_once(|| {
        assert!(plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok(), "bundled font parses");
    });
    let err = |e: &dyn std::fmt::Display| ChartError(e.to_string());
    let (lo, hi) = points.iter().fold((start, end), |(lo, hi), p| (lo.min(p.at), hi.max(p.at)));
    let pad = ((hi - lo) / 20).max(60_000);
    let (x0, x1) = (lo - pad, hi + pad);
    let top = |p: &Point| (p.volume as f64).max(p.band.map_or(0.0, |b| b[1]));
    let vmax = points.iter().map(top).fold(1.0, f64::max) * 1.15;
    // Bars no wider than the closest two points allow, so dense stretches do not overlap.
    let min_gap = points.windows(2).map(|w| w[1].at - w[0].at).filter(|&g| g > 0).min().unwrap_or(x1 - x0);
    let bar = ((x1 - x0) / (points.len().max(1) as i64 * 3)).min(min_gap * 4 / 5).max(1);
    let mut buf = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(26)
            .y_label_area_size(44)
            .caption("posts (bars), usual range (grey), negative posts (red), UTC", ("sans-serif", 14))
            .build_cartesian_2d(x0..x1, 0f64..vmax)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_labels(6)
            .y_labels(5)
            .x_label_formatter(&|x| hhmm(*x))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style(("sans-serif", 12))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(start, 0.0), (end.max(start + 1), vmax)],
                RED.mix(0.12).filled(),
            )))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(points.iter().map(|p| {
                Rectangle::new(
                    [(p.at - bar / 2, 0.0), (p.at + bar / 2, p.volume as f64)],
                    RGBColor(70, 110, 180).filled(),
                )
            }))
            .map_err(|e| err(&e))?;
        let red = RGBColor(200, 40, 40);
        let times: Vec<Millis> = points.iter().map(|p| p.at).collect();
        for run in crate::format::line_runs(&times).into_iter().map(|r| &points[r]) {
            // The usual range as one polygon per unbroken run: low edge forwards, high edge back.
            let banded: Vec<&Point> = run.iter().filter(|p| p.band.is_some()).collect();
            if banded.len() >= 2 {
                let band = |p: &Point| p.band.expect("filtered");
                let poly: Vec<(Millis, f64)> = banded
                    .iter()
                    .map(|p| (p.at, band(p)[0].min(vmax)))
                    .chain(banded.iter().rev().map(|p| (p.at, band(p)[1].min(vmax))))
                    .collect();
                chart
                    .draw_series(std::iter::once(Polygon::new(poly, BLACK.mix(0.12).filled())))
                    .map_err(|e| err(&e))?;
            }
            chart
                .draw_series(LineSeries::new(run.iter().map(|p| (p.at, p.negative as f64)), red.stroke_width(2)))
                .map_err(|e| err(&e))?;
        }
        chart
            .draw_series(points.iter().map(|p| Circle::new((p.at, p.negative as f64), 2, red.filled())))
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    let mut png = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png, WIDTH, HEIGHT);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(|e| err(&e))?;
        w.write_image_data(&buf).map_err(|e| err(&e))?;
    }
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_png_with_content() {
        let pts: Vec<Point> = (0..10)
            .map(|i| Point {
                // A gap after the fifth point: the line and band break there.
                at: 1_000_000_000 + i * 300_000 + if i >= 5 { 3_000_000 } else { 0 },
                volume: 10 + i as u64 * 7,
                negative: i as u64 * 3,
                band: Some([5.0, 20.0]),
            })
            .collect();
        let times: Vec<Millis> = pts.iter().map(|p| p.at).collect();
        assert_eq!(crate::format::line_runs(&times), [0..5, 5..10]);
        let png = render(&pts, 1_000_000_000 + 900_000, 1_000_000_000 + 2_400_000).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let dec = png::Decoder::new(std::io::Cursor::new(&png));
        let mut r = dec.read_info().unwrap();
        let mut img = vec![0; r.output_buffer_size()];
        let info = r.next_frame(&mut img).unwrap();
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        // Bars, the red line and the labels leave many distinct colours; a blank image has one.
        let distinct: std::collections::HashSet<&[u8]> = img.chunks(3).collect();
        assert!(distinct.len() > 20, "{} colours", distinct.len());
        let blue = img.chunks(3).filter(|p| p == &[70, 110, 180]).count();
        assert!(blue > 500, "bars drawn: {blue}");
        // The band: white under 12% black, a light grey (the exact value depends on the blend's rounding).
        let grey = img.chunks(3).filter(|p| p[0] == p[1] && p[1] == p[2] && (215..=235).contains(&p[0])).count();
        assert!(grey > 500, "band drawn: {grey}");
        // A single point and an empty history still draw.
        render(&pts[..1], 1_000_000_000, 1_000_000_000).unwrap();
        render(&[], 1_000_000_000, 1_000_100_000).unwrap();
    }
}
