//! Small SVG charts drawn on the server: no chart library, no script, and
//! readable without colour (every bar and point carries its value as text;
//! the second series of a line chart is dashed).

use std::fmt::Write;

use minijinja::HtmlEscape;

const W: f64 = 640.0;
const H: f64 = 200.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 28.0;
const TOP: f64 = 16.0;

fn esc(s: &str) -> String {
    HtmlEscape(s).to_string()
}

fn open(title: &str) -> String {
    format!(
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{t}\" xmlns=\"http://www.w3.org/2000/svg\"><title>{t}</title>",
        t = esc(title)
    )
}

/// Bars of a percentage per label (`None`: no data, drawn as "–").
pub fn percent_bars(title: &str, labels: &[String], values: &[Option<f64>]) -> String {
    let mut s = open(title);
    let plot_h = H - BOTTOM - TOP;
    let n = labels.len().max(1) as f64;
    let slot = (W - LEFT) / n;
    for pct in [0.0, 50.0, 100.0] {
        let y = TOP + plot_h * (1.0 - pct / 100.0);
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{W}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/><text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"end\">{pct}%</text>",
            LEFT - 6.0,
            y + 4.0
        );
    }
    for (i, (label, v)) in labels.iter().zip(values).enumerate() {
        let x = LEFT + slot * i as f64;
        let cx = x + slot / 2.0;
        match v {
            Some(v) => {
                let h = plot_h * v.clamp(0.0, 100.0) / 100.0;
                let y = TOP + plot_h - h;
                let class = if *v >= 95.0 {
                    "bar ok"
                } else if *v >= 80.0 {
                    "bar warning"
                } else {
                    "bar breached"
                };
                let _ = write!(
                    s,
                    "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" class=\"{class}\"><title>{}: {v:.1}% met</title></rect>\
                     <text x=\"{cx:.1}\" y=\"{:.1}\" class=\"value\" text-anchor=\"middle\">{v:.0}%</text>",
                    x + slot * 0.15,
                    slot * 0.7,
                    esc(label),
                    (y - 3.0).max(TOP - 2.0)
                );
            }
            None => {
                let _ = write!(
                    s,
                    "<text x=\"{cx:.1}\" y=\"{:.1}\" class=\"value\" text-anchor=\"middle\">no data</text>",
                    TOP + plot_h - 4.0
                );
            }
        }
        let _ = write!(
            s,
            "<text x=\"{cx:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"middle\">{}</text>",
            H - 8.0,
            esc(label)
        );
    }
    s.push_str("</svg>");
    s
}

/// One or two lines of durations (seconds) per label; the axis is in
/// minutes or hours, whichever reads better.
pub fn duration_lines(title: &str, labels: &[String], series: &[(&str, Vec<Option<i64>>)]) -> String {
    let mut s = open(title);
    let plot_h = H - BOTTOM - TOP;
    let max = series.iter().flat_map(|(_, v)| v.iter().flatten()).copied().max().unwrap_or(0).max(120) as f64;
    // The axis tops out at a whole number of minutes, or of hours when
    // durations run long, and is labelled like the tables.
    let div = if max >= 3.0 * 3600.0 { 3600.0 } else { 60.0 };
    let top = (max / div / 2.0).ceil() * 2.0;
    for frac in [0.0, 0.5, 1.0] {
        let y = TOP + plot_h * (1.0 - frac);
        let label = if frac == 0.0 {
            "0".to_owned()
        } else {
            super::span(chrono::TimeDelta::seconds((top * frac * div) as i64))
        };
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{W}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/><text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"end\">{label}</text>",
            LEFT - 6.0,
            y + 4.0,
        );
    }
    let n = labels.len().max(1) as f64;
    let slot = (W - LEFT) / n;
    let point = |i: usize, v: i64| {
        let x = LEFT + slot * i as f64 + slot / 2.0;
        let y = TOP + plot_h * (1.0 - (v as f64 / div / top).clamp(0.0, 1.0));
        (x, y)
    };
    for (k, (name, values)) in series.iter().enumerate() {
        let class = if k == 0 { "line" } else { "line second" };
        let pts: Vec<String> = values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| point(i, v)))
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        if pts.len() > 1 {
            let _ = write!(s, "<polyline points=\"{}\" class=\"{class}\" fill=\"none\"/>", pts.join(" "));
        }
        for (i, v) in values.iter().enumerate() {
            if let Some(v) = v {
                let (x, y) = point(i, *v);
                let _ = write!(
                    s,
                    "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" class=\"{class}\"><title>{} {}: {}</title></circle>",
                    esc(name),
                    esc(&labels[i]),
                    super::span(chrono::TimeDelta::seconds(*v))
                );
            }
        }
    }
    for (i, label) in labels.iter().enumerate() {
        let x = LEFT + slot * i as f64 + slot / 2.0;
        let _ = write!(
            s,
            "<text x=\"{x:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"middle\">{}</text>",
            H - 8.0,
            esc(label)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_values_written_out() {
        let svg = percent_bars("<b>", &["<script>".into(), "w2".into()], &[Some(87.5), None]);
        assert!(!svg.contains("<script>") && !svg.contains("<b>"));
        assert!(svg.contains("88%") && svg.contains("no data"));
    }

    #[test]
    fn long_durations_switch_to_hours() {
        let svg = duration_lines("t", &["a".into(), "b".into()], &[("mean", vec![Some(4 * 3600), Some(7200)])]);
        assert!(svg.contains(">4h 00m<"), "{svg}");
        assert!(svg.contains("<polyline"));
    }
}
