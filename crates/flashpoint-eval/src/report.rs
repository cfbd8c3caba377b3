//! `eval-detect`'s report: the Markdown tables printed to stdout (NAB, false alarms, natural surges and
//! what the false alarms opened on, the budget's two rates, the recall/delay grid, topics and classes, the
//! targets against the information bound), the grid as SVG, and every result as JSON. Formatting only:
//! everything here is computed by `analysis`.

use crate::analysis::{targets, Report, Target, ALARM_CAUSES, NATURAL};
use flashpoint_core::aggregate::AggregatorConfig;
use std::fmt::Write as _;

fn fmt_delay(d: Option<f64>) -> String {
    d.map_or("–".into(), |d| format!("{d:.0}"))
}

/// The report as Markdown tables.
pub fn markdown(r: &Report, cfg: &AggregatorConfig) -> String {
    let mut s = String::new();
    let fa_target = cfg.detection.target_false_alarms_per_week();
    let _ = writeln!(s, "## NAB standard profile (one configuration; nothing is fitted to these series)\n");
    let _ = writeln!(s, "| series | windows | detected | false positives | NAB |\n|---|---|---|---|---|");
    for x in &r.nab {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.1} |",
            x.series, x.windows, x.detected_windows, x.false_positives, x.normalized
        );
    }
    let _ = writeln!(s, "| **total** | | | | **{:.1}** |\n", r.nab_total);
    let _ = writeln!(
        s,
        "## False alarms on the un-injected backgrounds (outside labelled windows; target {fa_target}/entity-week)\n"
    );
    per_week_table(&mut s, "opened", &r.false_alarms);
    let _ = writeln!(
        s,
        "Surges already in these backgrounds, outside labelled windows, from day 8: runs of 5-minute counts at least \
         r x a robust seasonal baseline (median of the same 5 minutes +- 5 over the previous week) + 2. Catching \
         injected surges of a kind means opening on these too, and each counts as a false alarm above.\n"
    );
    let _ = writeln!(
        s,
        "| series | entity-weeks |{}\n|---|---|{}",
        NATURAL.map(|k| format!(" {} |", k.2)).concat(),
        NATURAL.map(|_| "---|").concat()
    );
    let (mut tot, mut weeks) = ([0; NATURAL.len()], 0.0);
    for (name, c, w) in &r.natural_surges {
        let _ =
            writeln!(s, "| {name} | {w:.1} |{}", c.map(|n| format!(" {n} ({:.2}) |", n as f64 / w.max(1e-9))).concat());
        weeks += w;
        (0..NATURAL.len()).for_each(|k| tot[k] += c[k]);
    }
    let _ = writeln!(
        s,
        "| **all** | {weeks:.1} |{}\n",
        tot.map(|n| format!(" {n} (**{:.2}**) |", n as f64 / weeks.max(1e-9))).concat()
    );
    let _ = writeln!(s, "Each cell: surges (per entity-week).\n");
    let _ =
        writeln!(s, "What the background holds where each false alarm above opened (30 minutes before to 10 after):\n");
    let _ = writeln!(
        s,
        "| series |{}\n|---|{}",
        ALARM_CAUSES.map(|c| format!(" {c} |")).concat(),
        ALARM_CAUSES.map(|_| "---|").concat()
    );
    let mut tot = [0; ALARM_CAUSES.len()];
    for (name, c) in &r.false_alarm_causes {
        let _ = writeln!(s, "| {name} |{}", c.map(|n| format!(" {n} |")).concat());
        (0..ALARM_CAUSES.len()).for_each(|k| tot[k] += c[k]);
    }
    let _ = writeln!(s, "| **all** |{}\n", tot.map(|n| format!(" **{n}** |")).concat());
    budget_table(&mut s, r);
    let _ = writeln!(s, "## Injected incidents: recall / median minutes to detect\n");
    let durs: Vec<i64> = {
        let mut d: Vec<i64> = r.cells.iter().map(|c| c.duration_min).collect();
        d.sort_unstable();
        d.dedup();
        d
    };
    let _ = write!(s, "| injection |");
    for d in &durs {
        let _ = write!(s, " {} |", dur_name(*d));
    }
    let _ = write!(s, "\n|---|");
    for _ in &durs {
        let _ = write!(s, "---|");
    }
    let _ = writeln!(s);
    let mut kinds: Vec<String> = r.cells.iter().map(|c| c.kind.clone()).collect();
    kinds.dedup();
    for k in &kinds {
        let _ = write!(s, "| {k} |");
        for d in &durs {
            match r.cells.iter().find(|c| &c.kind == k && c.duration_min == *d) {
                Some(c) => {
                    let _ =
                        write!(s, " {:.0}% / {} ({}) |", 100.0 * c.recall(), fmt_delay(c.median_delay()), c.injected);
                }
                None => {
                    let _ = write!(s, " |");
                }
            }
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "\nEach cell: recall / median minutes from the injection's start to detection (injections).\n");
    topic_table(&mut s, r);
    surge_table(&mut s, r);
    let _ = writeln!(
        s,
        "## Targets against what is knowable\n\n| target | injections | recall | median delay (min) | detected within \
         the delay | carry the bound's nats then (realised false alarms) | ratio (goal) | carry them (all openings) \
         | carry them (budget) |\n|---|---|---|---|---|---|---|---|---|"
    );
    for t in report_targets(r, cfg) {
        let _ = writeln!(
            s,
            "| {}, within {:.0} min | {} | {:.0}% | {} | {:.0}% | {:.0}% ({:.1} nats) | {} ({:.0}%) | {:.0}% ({:.1} nats) \
             | {:.0}% ({:.1} nats) |",
            t.label,
            t.horizon_min,
            t.injections,
            100.0 * t.recall,
            fmt_delay(t.median_delay),
            100.0 * t.within,
            100.0 * t.carry_realised,
            t.nats_realised,
            t.bound_ratio.map_or("–".into(), |x| format!("{:.0}%", 100.0 * x)),
            100.0 * t.goal,
            100.0 * t.carry_openings,
            t.nats_openings,
            100.0 * t.carry_budget,
            t.nats_budget
        );
    }
    let _ = writeln!(
        s,
        "\nThe carry columns are about the most the share detected in time can reach, for any detector with that \
         false-alarm rate: the injections whose first 10 minutes (3 hours for negatives) carry, in expectation, \
         the ln(steps per week / false alarms per week) nats of evidence that Lorden's bound says a detector \
         needs on average before it alarms, even with the baseline known exactly and Poisson / binomial noise \
         (`injection::information`): at the realised false-alarm rate (openings on neither a labelled window nor \
         a natural surge, {:.3} per entity-week, at least one over the run), at the rate of all openings ({:.2}) \
         and at the budget ({fa_target}). It bounds an average, so luck beats it on a few injections. The ratio \
         is the share detected in time over the share that carries the evidence at the realised false-alarm \
         rate.",
        r.false_alarm_rate(),
        r.opening_rate()
    );
    s
}

/// The targets of `r` at its realised rates and `cfg`'s budget.
pub fn report_targets(r: &Report, cfg: &AggregatorConfig) -> Vec<Target> {
    let steps_per_week = 7.0 * 86_400.0 / cfg.window.slide_secs.max(1) as f64;
    let budget = cfg.detection.target_false_alarms_per_week();
    targets(&r.cells, steps_per_week, r.false_alarm_rate(), r.opening_rate(), budget)
}

/// The budget's two rates per series: openings on neither a labelled window nor a natural surge, and pages.
fn budget_table(s: &mut String, r: &Report) {
    let _ = writeln!(
        s,
        "## The budget on the un-injected backgrounds (target <= 0.1 per entity-week each)\n\n\
         Openings after the warm-up outside labelled windows: on a natural x3 surge of at least 10 minutes \
         (from 30 minutes before it to 10 after; a true `watch` detection of that surge; a surge that runs into \
         a labelled window counts, its rise being that anomaly's) or on neither. Pages: \
         incidents opened after the warm-up that were `crisis` at `warning` or above, over all entity-weeks \
         after the warm-up.\n\n\
         | series | entity-weeks (unlabelled) | openings | on a natural surge | on neither | per entity-week | \
         pages | entity-weeks | pages per entity-week |\n|---|---|---|---|---|---|---|---|---|"
    );
    let mut t = crate::analysis::Budget { series: "**all**".into(), ..Default::default() };
    for b in &r.budget {
        budget_row(s, b, "");
        t.weeks_unlabelled += b.weeks_unlabelled;
        t.openings += b.openings;
        t.on_natural += b.on_natural;
        t.unexplained += b.unexplained;
        t.pages += b.pages;
        t.weeks += b.weeks;
    }
    budget_row(s, &t, "**");
    s.push('\n');
}

/// One row of the budget table; `em` marks the two rates (bold on the totals row).
fn budget_row(s: &mut String, b: &crate::analysis::Budget, em: &str) {
    let _ = writeln!(
        s,
        "| {} | {:.1} | {} | {} | {} | {em}{:.2}{em} | {} | {:.1} | {em}{:.2}{em} |",
        b.series,
        b.weeks_unlabelled,
        b.openings,
        b.on_natural,
        b.unexplained,
        b.unexplained as f64 / b.weeks_unlabelled.max(1e-9),
        b.pages,
        b.weeks,
        b.pages as f64 / b.weeks.max(1e-9)
    );
}

/// Per injection kind, pooled over durations: of the detected injections, the topic among the top three
/// drivers and the class right.
fn topic_table(s: &mut String, r: &Report) {
    let _ = writeln!(
        s,
        "## Injected incidents: topic and class (of the detected; targets 90%)\n\n\
         | injection | detected | topic in the top 3 drivers: detecting event | any event during it | class \
         right: detecting event | last event during it |\n|---|---|---|---|---|---|"
    );
    let mut kinds: Vec<String> = r.cells.iter().map(|c| c.kind.clone()).collect();
    kinds.dedup();
    for k in &kinds {
        let (mut n, mut a, mut b, mut c, mut d) = (0, 0, 0, 0, 0);
        for x in r.cells.iter().filter(|x| &x.kind == k) {
            n += x.detected;
            a += x.topic_first;
            b += x.topic_best;
            c += x.class_first;
            d += x.class_last;
        }
        let pct = |k: usize| format!("{:.0}%", 100.0 * k as f64 / n.max(1) as f64);
        let want = if k.starts_with("volume") { "buzz" } else { "crisis" };
        let _ = writeln!(s, "| {k} ({want}) | {n} | {} | {} | {} | {} |", pct(a), pct(b), pct(c), pct(d));
    }
    let _ = writeln!(s);
}

/// Volume injections lasting an hour or more, split by whether they are natural surges by the budget's rule:
/// a "× 3" injection is sized against the trailing day's mean, which at busy hours is no × 3 surge against
/// the same hour of other days, and the detector's buzz gate waits for a surge.
fn surge_table(s: &mut String, r: &Report) {
    if !r.cells.iter().any(|c| c.kind.starts_with("volume")) {
        return;
    }
    let (ratio, rows) = crate::analysis::BUDGET_SURGE;
    let _ = writeln!(
        s,
        "## Volume injections that are surges by the budget's rule (x{ratio} the robust baseline for {} minutes, \
         in expectation), lasting 1 h or more\n\n| injection | injections | surges | recall / median min on the \
         surges | recall on the rest |\n|---|---|---|---|---|",
        rows as i64 * crate::time::STEP / crate::time::MIN
    );
    let mut kinds: Vec<String> =
        r.cells.iter().filter(|c| c.kind.starts_with("volume")).map(|c| c.kind.clone()).collect();
    kinds.dedup();
    for k in &kinds {
        let (mut on, mut off) = (Vec::new(), Vec::new());
        for c in r.cells.iter().filter(|c| &c.kind == k && c.duration_min >= 60) {
            for (d, surge) in c.delays.iter().zip(&c.surge) {
                if *surge {
                    on.push(d.1)
                } else {
                    off.push(d.1)
                }
            }
        }
        let recall =
            |v: &[Option<f64>]| 100.0 * v.iter().filter(|d| d.is_some()).count() as f64 / v.len().max(1) as f64;
        let med = crate::analysis::median(on.iter().flatten().copied().collect());
        let _ = writeln!(
            s,
            "| {k} | {} | {} ({:.0}%) | {:.0}% / {} | {:.0}% |",
            on.len() + off.len(),
            on.len(),
            100.0 * on.len() as f64 / (on.len() + off.len()).max(1) as f64,
            recall(&on),
            fmt_delay(med),
            recall(&off)
        );
    }
    let _ = writeln!(s);
}

/// A table of (series, count, entity-weeks) rows with each series' rate per entity-week and the pooled rate.
fn per_week_table(s: &mut String, what: &str, rows: &[(String, usize, f64)]) {
    let _ = writeln!(s, "| series | {what} | entity-weeks | per entity-week |\n|---|---|---|---|");
    let (mut total, mut weeks) = (0, 0.0);
    for (n, c, w) in rows {
        let _ = writeln!(s, "| {n} | {c} | {w:.1} | {:.2} |", *c as f64 / w.max(1e-9));
        total += c;
        weeks += w;
    }
    let _ = writeln!(s, "| **all** | {total} | {weeks:.1} | **{:.2}** |\n", total as f64 / f64::max(weeks, 1e-9));
}

fn dur_name(min: i64) -> String {
    if min % 1440 == 0 {
        format!("{} d", min / 1440)
    } else if min % 60 == 0 {
        format!("{} h", min / 60)
    } else {
        format!("{min} min")
    }
}

/// The recall/delay grid as a self-contained SVG: one row per injection kind, one column per duration; the
/// fill is the recall (red 0% to green 100%), the text recall and median delay.
pub fn svg(r: &Report) -> String {
    let mut durs: Vec<i64> = r.cells.iter().map(|c| c.duration_min).collect();
    durs.sort_unstable();
    durs.dedup();
    let mut kinds: Vec<String> = r.cells.iter().map(|c| c.kind.clone()).collect();
    kinds.dedup();
    let (cw, ch, left, top) = (130.0, 34.0, 120.0, 60.0);
    let w = left + cw * durs.len() as f64 + 20.0;
    let h = top + ch * kinds.len() as f64 + 40.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="22" font-size="14" font-weight="bold">flashpoint eval-detect: recall / median minutes to detect</text>"#
    );
    for (j, d) in durs.iter().enumerate() {
        let x = left + cw * j as f64 + cw / 2.0;
        let _ = writeln!(s, r#"<text x="{x}" y="{}" text-anchor="middle">{}</text>"#, top - 8.0, dur_name(*d));
    }
    for (i, k) in kinds.iter().enumerate() {
        let y = top + ch * i as f64;
        let _ = writeln!(s, r#"<text x="10" y="{}">{k}</text>"#, y + ch / 2.0 + 4.0);
        for (j, d) in durs.iter().enumerate() {
            let Some(c) = r.cells.iter().find(|c| &c.kind == k && c.duration_min == *d) else { continue };
            let x = left + cw * j as f64;
            let rec = c.recall();
            let (red, green) = ((255.0 * (1.0 - rec)).round(), (200.0 * rec + 55.0).round());
            let _ = writeln!(
                s,
                r#"<rect x="{x}" y="{y}" width="{}" height="{}" fill="rgb({red},{green},90)" stroke="white"/>"#,
                cw - 2.0,
                ch - 2.0
            );
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="middle">{:.0}% / {} min</text>"#,
                x + cw / 2.0,
                y + ch / 2.0 + 4.0,
                100.0 * rec,
                fmt_delay(c.median_delay())
            );
        }
    }
    let _ = writeln!(
        s,
        r#"<text x="10" y="{}" font-size="11">Injected on the NAB realTweets backgrounds with SemEval tweets; see README.</text>"#,
        h - 12.0
    );
    let _ = writeln!(s, "</svg>");
    s
}

/// The full results (every injection's delay) as JSON, for `--json`.
pub fn json(r: &Report, cfg: &AggregatorConfig, seed: u64) -> serde_json::Value {
    serde_json::json!({
        "seed": seed,
        "false_alarms_per_week_budget": cfg.detection.target_false_alarms_per_week(),
        "false_alarm_rate": r.false_alarm_rate(),
        "opening_rate": r.opening_rate(),
        "budget": r.budget,
        "targets": report_targets(r, cfg),
        "nab_total": r.nab_total,
        "nab": r.nab,
        "false_alarms": r.false_alarms,
        "natural_surges": r.natural_surges,
        "false_alarm_causes": r.false_alarm_causes,
        "cells": r.cells,
    })
}
