//! Charts drawn by the program for the reports and the dashboard: a line chart (exposure over
//! time per tier, storage growth), a heat map (compliance branch × tier) and a bar chart (drill
//! RTO vs target per system), each an inline `<svg>` in a [`Markup`], plus [`PRINT_CSS`], the
//! style sheet the printed report pages share.
//!
//! Pure functions: data in, markup out. This module reads no clock, no file and no database,
//! and decides no status: the caller passes each [`Rag`] it computed. An SVG here carries
//! `role="img"`, a `<title>` and an `aria-label`, a `viewBox` so it scales to its container; it
//! never holds a script or a reference to anything outside itself, and every label goes through
//! maud's escaping. Colour is never the only signal: every status is also written as a word
//! and every series has its own dash pattern, so a page printed in greyscale still reads.
//! Every SVG element is written with an explicit end tag (`<rect …></rect>`): inside HTML an
//! unclosed `<rect>` in SVG would swallow its siblings, and the output stays well-formed XML.

use maud::{Markup, html};
use serde::Serialize;

use crate::i18n::Lang;

/// A red/amber/green status, as reports and the dashboard show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Rag {
    /// Within target.
    Green,
    /// Within target but close to it, or partly out of it.
    Amber,
    /// Out of target.
    Red,
    /// No data, or not applicable.
    Grey,
}

impl Rag {
    /// The status as a word, so it reads without colour.
    pub fn label(self, lang: Lang) -> &'static str {
        match self {
            Rag::Green => lang.pick("Green", "绿"),
            Rag::Amber => lang.pick("Amber", "黄"),
            Rag::Red => lang.pick("Red", "红"),
            Rag::Grey => lang.pick("No data", "无数据"),
        }
    }

    /// The worse of two statuses: Red > Amber > Green > Grey (no data never hides a finding).
    pub fn worst(self, other: Rag) -> Rag {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    fn rank(self) -> u8 {
        match self {
            Rag::Grey => 0,
            Rag::Green => 1,
            Rag::Amber => 2,
            Rag::Red => 3,
        }
    }

    /// The class [`PRINT_CSS`] colours.
    fn class(self) -> &'static str {
        match self {
            Rag::Green => "rag-green",
            Rag::Amber => "rag-amber",
            Rag::Red => "rag-red",
            Rag::Grey => "rag-grey",
        }
    }

    /// Fill colour, as an attribute so the SVG is right without any style sheet. The four differ
    /// in lightness as well as hue.
    fn fill(self) -> &'static str {
        match self {
            Rag::Green => "#2e7d32",
            Rag::Amber => "#f9c74f",
            Rag::Red => "#b71c1c",
            Rag::Grey => "#d9d9d9",
        }
    }

    /// Text colour readable on [`Rag::fill`].
    fn ink(self) -> &'static str {
        match self {
            Rag::Green | Rag::Red => "#ffffff",
            Rag::Amber | Rag::Grey => "#1b1f23",
        }
    }
}

/// One line of values over time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// The legend's text.
    pub label: String,
    /// `(when, value)`, in time order. Points outside the chart's range and non-finite values
    /// are not drawn.
    pub points: Vec<(jiff::Timestamp, f64)>,
}

/// Values over a time range, with an optional target line.
#[derive(Clone, Debug, PartialEq)]
pub struct LineChart {
    /// Shown above the chart and as its accessible name.
    pub title: String,
    /// The y axis' title, e.g. "hours" / "小时".
    pub y_unit: String,
    /// Left end of the x axis.
    pub from: jiff::Timestamp,
    /// Right end of the x axis.
    pub to: jiff::Timestamp,
    /// The lines, each drawn with its own colour and dash pattern.
    pub series: Vec<Series>,
    /// A horizontal target line, e.g. the tier's RPO.
    pub target: Option<f64>,
    /// The target line's text, e.g. "RPO target" / "RPO 目标".
    pub target_label: String,
}

/// One cell of a heat map.
#[derive(Clone, Debug, PartialEq)]
pub struct HeatCell {
    /// The cell's status (its colour, and a word under `text`).
    pub rag: Rag,
    /// The figure shown in the cell, e.g. "31h" or "98%".
    pub text: String,
    /// Where the cell links to, e.g. the dashboard's page for that branch and tier.
    pub href: Option<String>,
}

/// A grid of statuses.
#[derive(Clone, Debug, PartialEq)]
pub struct HeatMap {
    /// Shown above the map and as its accessible name.
    pub title: String,
    /// Row headings (e.g. branches).
    pub rows: Vec<String>,
    /// Column headings (e.g. tiers).
    pub cols: Vec<String>,
    /// `cells[row][col]`; `None` (or a missing entry) = nothing there, e.g. no system of that
    /// tier at that branch.
    pub cells: Vec<Vec<Option<HeatCell>>>,
}

/// One bar: a measured value against its target.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    /// The row's text, e.g. the system.
    pub label: String,
    /// The measured value; `None` = never measured.
    pub value: Option<f64>,
    /// The target, drawn as a marker across the bar.
    pub target: Option<f64>,
    /// The bar's status.
    pub rag: Rag,
    /// A short remark under the bar, e.g. "extrapolated" / "外推"; empty for none.
    pub note: String,
}

/// Horizontal bars, one per row.
#[derive(Clone, Debug, PartialEq)]
pub struct BarChart {
    /// Shown above the chart and as its accessible name.
    pub title: String,
    /// The values' unit, e.g. "h" / "小时".
    pub unit: String,
    /// The rows, top to bottom.
    pub bars: Vec<Bar>,
}

/// The style sheet of the printed report pages: A4 pages, a page break before each
/// `h2.section`, tables, the RAG colours and the CJK font stack.
pub const PRINT_CSS: &str = r#"
@page { size: A4; margin: 16mm 14mm 18mm 14mm; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font-family: "Noto Sans", "Helvetica Neue", Arial, "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif;
  font-size: 10.5pt; line-height: 1.45; color: #1b1f23; margin: 0 auto; max-width: 60em; padding: 0 1em; }
:lang(zh-CN), :lang(zh-CN) body { font-family: "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif; }
h1 { font-size: 18pt; margin: 0 0 .3em 0; }
h2 { font-size: 13pt; margin-top: 1.6em; border-bottom: 1px solid #8c959f; padding-bottom: .2em; break-after: avoid; }
h3 { font-size: 11pt; break-after: avoid; }
table { border-collapse: collapse; width: 100%; margin: .5em 0; font-size: 9.5pt; }
th, td { border: 1px solid #8c959f; padding: .25em .45em; text-align: left; vertical-align: top; }
th { background: #eaeef2; }
thead { display: table-header-group; }
tr { break-inside: avoid; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .hash { font-family: "Noto Sans Mono", "DejaVu Sans Mono", monospace; font-size: .85em; word-break: break-all; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .15em 1em; }
dt { font-weight: 600; } dd { margin: 0; }
figure { margin: .8em 0; break-inside: avoid; }
figure svg { width: 100%; height: auto; max-width: 48em; }
.note { color: #57606a; font-size: .9em; }
.rag { display: inline-block; padding: 0 .45em; border-radius: .25em; font-weight: 600; border: 1px solid #57606a; }
.rag-green { background: #2e7d32; color: #ffffff; }
.rag-amber { background: #f9c74f; color: #1b1f23; }
.rag-red { background: #b71c1c; color: #ffffff; }
.rag-grey { background: #d9d9d9; color: #1b1f23; }
.signoff td { height: 2.4em; }
@media print {
  body { max-width: none; padding: 0; }
  h2.section { break-before: page; }
  a { color: inherit; text-decoration: none; }
}
"#;

/// The font stack inside the SVGs (they may be shown outside the report pages).
const FONT_FAMILY: &str = "'Noto Sans', Arial, 'Noto Sans CJK SC', 'Noto Sans SC', 'Source Han Sans SC', 'PingFang SC', 'Microsoft YaHei', sans-serif";

/// Width of every chart's coordinate system; the `viewBox` scales it to the container.
const WIDTH: f64 = 720.0;
const TITLE_H: f64 = 30.0;
const FONT: f64 = 12.0;
const SMALL: f64 = 10.0;

/// Series colours; with [`DASHES`] each series differs in more than hue.
const PALETTE: [&str; 6] = [
    "#1f4e79", "#c55a11", "#548235", "#7030a0", "#404040", "#bf9000",
];
const DASHES: [Option<&str>; 6] = [
    None,
    Some("7 3"),
    Some("2 3"),
    Some("9 3 2 3"),
    Some("1 2"),
    Some("12 4"),
];
const TARGET_INK: &str = "#b71c1c";

/// Values over time with an optional target line. Points outside `from..=to` are left out
/// (they would lie off the axis); a lone point is drawn as a dot; no point at all reads
/// "No data".
pub fn line_chart(chart: &LineChart, lang: Lang) -> Markup {
    let (left, right, top, bottom) = (64.0, 20.0, TITLE_H + 14.0, 44.0);
    let plot_w = WIDTH - left - right;
    let plot_h = 200.0;
    let from_ms = chart.from.as_millisecond();
    let span_ms = (chart.to.as_millisecond() - from_ms).max(1);
    let series: Vec<(&str, Vec<(f64, f64)>)> = chart
        .series
        .iter()
        .map(|s| {
            let points = s
                .points
                .iter()
                .filter(|(t, v)| v.is_finite() && *t >= chart.from && *t <= chart.to)
                .map(|(t, v)| ((t.as_millisecond() - from_ms) as f64 / span_ms as f64, *v))
                .collect();
            (s.label.as_str(), points)
        })
        .collect();
    let target = chart.target.filter(|t| t.is_finite());
    let values = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, v)| *v))
        .chain(target);
    let scale = Scale::over(values);
    let x_of = |frac: f64| left + frac * plot_w;
    let y_of = |v: f64| top + plot_h - scale.frac(v) * plot_h;
    let empty = series.iter().all(|(_, p)| p.is_empty());

    let legend = Legend::layout(
        series.iter().map(|(label, _)| *label),
        left,
        WIDTH - right,
        top + plot_h + bottom,
    );
    let height = top + plot_h + bottom + legend.height;
    let x_ticks = 4;
    let long = span_ms > 2 * 86_400_000;
    let tick_text = |i: i64| {
        let at = from_ms + span_ms * i / x_ticks;
        let format = if long { "%Y-%m-%d" } else { "%m-%d %H:%M" };
        jiff::Timestamp::from_millisecond(at)
            .map(|t| t.strftime(format).to_string())
            .unwrap_or_default()
    };

    html! {
        svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart line-chart"
            viewBox=(format!("0 0 {} {}", n(WIDTH), n(height))) aria-label=(chart.title)
            font-family=(FONT_FAMILY) font-size=(n(FONT)) {
            title { (chart.title) }
            (heading(&chart.title))
            // Grid and y axis.
            @for tick in scale.ticks() {
                line x1=(n(left)) x2=(n(left + plot_w)) y1=(n(y_of(tick))) y2=(n(y_of(tick)))
                    stroke="#d0d7de" stroke-width="1" {}
                text x=(n(left - 6.0)) y=(n(y_of(tick) + 4.0)) text-anchor="end" fill="#1b1f23" {
                    (num(tick))
                }
            }
            text x=(n(14.0)) y=(n(top + plot_h / 2.0)) text-anchor="middle" fill="#1b1f23"
                transform=(format!("rotate(-90 14 {})", n(top + plot_h / 2.0))) {
                (chart.y_unit)
            }
            // X axis.
            line x1=(n(left)) x2=(n(left + plot_w)) y1=(n(top + plot_h)) y2=(n(top + plot_h))
                stroke="#57606a" stroke-width="1" {}
            line x1=(n(left)) x2=(n(left)) y1=(n(top)) y2=(n(top + plot_h))
                stroke="#57606a" stroke-width="1" {}
            @for i in 0..=x_ticks {
                @let x = x_of(i as f64 / x_ticks as f64);
                line x1=(n(x)) x2=(n(x)) y1=(n(top + plot_h)) y2=(n(top + plot_h + 4.0))
                    stroke="#57606a" stroke-width="1" {}
                text x=(n(x)) y=(n(top + plot_h + 17.0)) fill="#1b1f23"
                    text-anchor=(if i == 0 { "start" } else if i == x_ticks { "end" } else { "middle" }) {
                    (tick_text(i))
                }
            }
            text x=(n(left + plot_w / 2.0)) y=(n(top + plot_h + 34.0)) text-anchor="middle" fill="#1b1f23" {
                (lang.pick("Time (UTC)", "时间（UTC）"))
            }
            @if let Some(t) = target {
                line x1=(n(left)) x2=(n(left + plot_w)) y1=(n(y_of(t))) y2=(n(y_of(t)))
                    stroke=(TARGET_INK) stroke-width="1.5" stroke-dasharray="5 4" {}
                text x=(n(left + plot_w - 4.0)) y=(n(y_of(t) - 4.0)) text-anchor="end"
                    fill=(TARGET_INK) font-size=(n(SMALL)) {
                    (chart.target_label) " " (num(t))
                }
            }
            @if empty {
                text x=(n(left + plot_w / 2.0)) y=(n(top + plot_h / 2.0)) text-anchor="middle" fill="#57606a" {
                    (lang.pick("No data", "无数据"))
                }
            }
            @for (i, (_, points)) in series.iter().enumerate() {
                @let (colour, dash) = (PALETTE[i % PALETTE.len()], DASHES[i % DASHES.len()]);
                @if points.len() > 1 {
                    polyline fill="none" stroke=(colour) stroke-width="2" stroke-dasharray=[dash]
                        points=(points.iter().map(|(x, v)| format!("{},{}", n(x_of(*x)), n(y_of(*v)))).collect::<Vec<_>>().join(" ")) {}
                }
                @if points.len() <= 24 {
                    @for (x, v) in points {
                        circle cx=(n(x_of(*x))) cy=(n(y_of(*v))) r="2.5" fill=(colour) {}
                    }
                }
            }
            @for item in &legend.items {
                @let (colour, dash) = (PALETTE[item.index % PALETTE.len()], DASHES[item.index % DASHES.len()]);
                line x1=(n(item.x)) x2=(n(item.x + 22.0)) y1=(n(item.y - 4.0)) y2=(n(item.y - 4.0))
                    stroke=(colour) stroke-width="2" stroke-dasharray=[dash] {}
                text x=(n(item.x + 27.0)) y=(n(item.y)) fill="#1b1f23" { (item.text) }
            }
        }
    }
}

/// A grid of statuses with row and column headings and a legend. A cell with an `href` is a
/// link; an empty cell is drawn as a dashed outline with a dash.
pub fn heat_map(map: &HeatMap, lang: Lang) -> Markup {
    let row_w = map
        .rows
        .iter()
        .map(|r| text_width(r, FONT))
        .fold(0.0, f64::max)
        .clamp(60.0, 200.0)
        + 12.0;
    let col_w = map
        .cols
        .iter()
        .map(|c| text_width(c, FONT))
        .fold(0.0, f64::max)
        .clamp(84.0, 160.0)
        + 12.0;
    let cell_h = 40.0;
    let head_h = 24.0;
    let top = TITLE_H + 8.0;
    let grid_top = top + head_h;
    let width = (row_w + col_w * map.cols.len() as f64 + 8.0).max(WIDTH);
    let empty = map.rows.is_empty() || map.cols.is_empty();
    let grid_h = if empty {
        cell_h
    } else {
        cell_h * map.rows.len() as f64
    };
    let legend_y = grid_top + grid_h + 24.0;
    let height = legend_y + 12.0;
    let statuses = [Rag::Green, Rag::Amber, Rag::Red, Rag::Grey];

    html! {
        svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart heat-map"
            viewBox=(format!("0 0 {} {}", n(width), n(height))) aria-label=(map.title)
            font-family=(FONT_FAMILY) font-size=(n(FONT)) {
            title { (map.title) }
            (heading(&map.title))
            @if empty {
                text x=(n(width / 2.0)) y=(n(grid_top + cell_h / 2.0)) text-anchor="middle" fill="#57606a" {
                    (lang.pick("No data", "无数据"))
                }
            } @else {
                @for (c, col) in map.cols.iter().enumerate() {
                    (label(col, row_w + col_w * c as f64 + col_w / 2.0, grid_top - 8.0, col_w - 6.0, FONT, "middle", "600"))
                }
                @for (r, row) in map.rows.iter().enumerate() {
                    @let y = grid_top + cell_h * r as f64;
                    (label(row, row_w - 8.0, y + cell_h / 2.0 + 4.0, row_w - 12.0, FONT, "end", "600"))
                    @for c in 0..map.cols.len() {
                        @let x = row_w + col_w * c as f64;
                        @match map.cells.get(r).and_then(|cells| cells.get(c)).and_then(Option::as_ref) {
                            Some(cell) => {
                                @if let Some(href) = &cell.href {
                                    a href=(href) { (heat_cell(cell, x, y, col_w, cell_h, lang)) }
                                } @else {
                                    (heat_cell(cell, x, y, col_w, cell_h, lang))
                                }
                            }
                            None => {
                                rect x=(n(x + 2.0)) y=(n(y + 2.0)) width=(n(col_w - 4.0)) height=(n(cell_h - 4.0))
                                    fill="#ffffff" stroke="#8c959f" stroke-dasharray="3 3" {}
                                text x=(n(x + col_w / 2.0)) y=(n(y + cell_h / 2.0 + 4.0)) text-anchor="middle" fill="#8c959f" {
                                    "—"
                                }
                            }
                        }
                    }
                }
            }
            @for (i, rag) in statuses.iter().enumerate() {
                @let x = row_w + 110.0 * i as f64;
                rect class=(rag.class()) x=(n(x)) y=(n(legend_y - 10.0)) width="12" height="12"
                    fill=(rag.fill()) stroke="#57606a" {}
                text x=(n(x + 17.0)) y=(n(legend_y)) fill="#1b1f23" { (rag.label(lang)) }
            }
        }
    }
}

fn heat_cell(cell: &HeatCell, x: f64, y: f64, w: f64, h: f64, lang: Lang) -> Markup {
    html! {
        rect class=(cell.rag.class()) x=(n(x + 2.0)) y=(n(y + 2.0)) width=(n(w - 4.0)) height=(n(h - 4.0))
            fill=(cell.rag.fill()) stroke="#57606a" stroke-width="0.5" {}
        (label_ink(&cell.text, x + w / 2.0, y + h / 2.0 - 1.0, w - 10.0, FONT, "middle", "600", cell.rag.ink()))
        text x=(n(x + w / 2.0)) y=(n(y + h / 2.0 + 12.0)) text-anchor="middle" font-size=(n(SMALL))
            fill=(cell.rag.ink()) {
            (cell.rag.label(lang))
        }
    }
}

/// Horizontal bars of measured values with their targets as markers, each row with its value,
/// target and status in words; a bar never measured reads "never measured".
pub fn bar_chart(chart: &BarChart, lang: Lang) -> Markup {
    let label_w = chart
        .bars
        .iter()
        .map(|b| text_width(&b.label, FONT))
        .fold(0.0, f64::max)
        .clamp(80.0, 220.0)
        + 12.0;
    let text_w = 220.0;
    let bar_x = label_w;
    let bar_w = WIDTH - label_w - text_w - 12.0;
    let has_notes = chart.bars.iter().any(|b| !b.note.is_empty());
    let row_h = if has_notes { 40.0 } else { 28.0 };
    let top = TITLE_H + 8.0;
    let rows_h = if chart.bars.is_empty() {
        row_h
    } else {
        row_h * chart.bars.len() as f64
    };
    let axis_y = top + rows_h;
    let height = axis_y + 40.0;
    let scale = Scale::over(
        chart
            .bars
            .iter()
            .flat_map(|b| [b.value, b.target])
            .flatten()
            .filter(|v| v.is_finite()),
    )
    .including_zero();
    let x_of = |v: f64| bar_x + scale.frac(v) * bar_w;

    html! {
        svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart bar-chart"
            viewBox=(format!("0 0 {} {}", n(WIDTH), n(height))) aria-label=(chart.title)
            font-family=(FONT_FAMILY) font-size=(n(FONT)) {
            title { (chart.title) }
            (heading(&chart.title))
            @for tick in scale.ticks() {
                line x1=(n(x_of(tick))) x2=(n(x_of(tick))) y1=(n(top)) y2=(n(axis_y))
                    stroke="#d0d7de" stroke-width="1" {}
                text x=(n(x_of(tick))) y=(n(axis_y + 15.0)) text-anchor="middle" fill="#1b1f23" {
                    (num(tick))
                }
            }
            line x1=(n(bar_x)) x2=(n(bar_x + bar_w)) y1=(n(axis_y)) y2=(n(axis_y))
                stroke="#57606a" stroke-width="1" {}
            text x=(n(bar_x + bar_w / 2.0)) y=(n(axis_y + 32.0)) text-anchor="middle" fill="#1b1f23" {
                (chart.unit)
            }
            @if chart.bars.is_empty() {
                text x=(n(bar_x + bar_w / 2.0)) y=(n(top + row_h / 2.0 + 4.0)) text-anchor="middle" fill="#57606a" {
                    (lang.pick("No data", "无数据"))
                }
            }
            @for (i, bar) in chart.bars.iter().enumerate() {
                @let y = top + row_h * i as f64;
                @let mid = y + 14.0;
                @let value = bar.value.filter(|v| v.is_finite());
                @let target = bar.target.filter(|t| t.is_finite());
                (label(&bar.label, label_w - 8.0, mid + 4.0, label_w - 12.0, FONT, "end", "normal"))
                @if let Some(v) = value {
                    @let (x0, x1) = (x_of(v.min(0.0)), x_of(v.max(0.0)));
                    rect class=(bar.rag.class()) x=(n(x0)) y=(n(mid - 8.0)) width=(n((x1 - x0).max(1.0))) height="16"
                        fill=(bar.rag.fill()) stroke="#57606a" stroke-width="0.5" {}
                } @else {
                    rect class="rag-grey" x=(n(bar_x)) y=(n(mid - 8.0)) width=(n(bar_w)) height="16"
                        fill="none" stroke="#8c959f" stroke-dasharray="3 3" {}
                    text x=(n(bar_x + 6.0)) y=(n(mid + 4.0)) fill="#57606a" font-style="italic" {
                        (lang.pick("never measured", "未测量"))
                    }
                }
                @if let Some(t) = target {
                    line x1=(n(x_of(t))) x2=(n(x_of(t))) y1=(n(mid - 12.0)) y2=(n(mid + 12.0))
                        stroke=(TARGET_INK) stroke-width="2" stroke-dasharray="4 2" {}
                }
                (label(&value_text(value, target, &chart.unit, bar.rag, lang), bar_x + bar_w + 10.0, mid + 4.0, text_w, FONT, "start", "normal"))
                @if !bar.note.is_empty() {
                    (label_ink(&bar.note, bar_x, mid + 23.0, bar_w + text_w, SMALL, "start", "normal", "#57606a"))
                }
            }
        }
    }
}

/// "2.5 h / target 4 h · Green" — the row's figures in words.
fn value_text(value: Option<f64>, target: Option<f64>, unit: &str, rag: Rag, lang: Lang) -> String {
    let value = match value {
        Some(v) => format!("{} {unit}", num(v)),
        None => "—".to_owned(),
    };
    let target = match target {
        Some(t) => format!(" / {} {} {unit}", lang.pick("target", "目标"), num(t)),
        None => String::new(),
    };
    format!("{value}{target} · {}", rag.label(lang))
}

fn heading(title: &str) -> Markup {
    html! {
        text x="0" y="18" font-size="14" font-weight="700" fill="#1b1f23" { (title) }
    }
}

/// A text that is cut with "…" to fit `max_w`; the whole text stays in its tooltip.
fn label(text: &str, x: f64, y: f64, max_w: f64, size: f64, anchor: &str, weight: &str) -> Markup {
    label_ink(text, x, y, max_w, size, anchor, weight, "#1b1f23")
}

#[allow(clippy::too_many_arguments)] // a drawing primitive: position, box, font and colour
fn label_ink(
    text: &str,
    x: f64,
    y: f64,
    max_w: f64,
    size: f64,
    anchor: &str,
    weight: &str,
    ink: &str,
) -> Markup {
    let shown = fit(text, max_w, size);
    html! {
        text x=(n(x)) y=(n(y)) text-anchor=(anchor) font-size=(n(size)) font-weight=(weight) fill=(ink) {
            @if shown != text { title { (text) } }
            (shown)
        }
    }
}

/// Where the legend's entries go: left to right, wrapping under each other.
struct Legend {
    items: Vec<LegendItem>,
    height: f64,
}

struct LegendItem {
    index: usize,
    text: String,
    x: f64,
    y: f64,
}

impl Legend {
    fn layout<'a>(
        labels: impl Iterator<Item = &'a str>,
        left: f64,
        right: f64,
        top: f64,
    ) -> Legend {
        let line_h = 18.0;
        let mut items = Vec::new();
        let (mut x, mut y) = (left, top + 4.0);
        for (index, text) in labels.enumerate() {
            let text = fit(text, right - left - 30.0, FONT);
            let w = 30.0 + text_width(&text, FONT) + 18.0;
            if x > left && x + w > right {
                x = left;
                y += line_h;
            }
            items.push(LegendItem { index, text, x, y });
            x += w;
        }
        let height = if items.is_empty() { 0.0 } else { y - top + 8.0 };
        Legend { items, height }
    }
}

/// A linear axis from `min` to `max` with round ticks.
struct Scale {
    min: f64,
    max: f64,
    step: f64,
}

impl Scale {
    /// The smallest round axis holding every value and zero; 0..1 for no value.
    fn over(values: impl Iterator<Item = f64>) -> Scale {
        let (mut lo, mut hi) = (0.0_f64, 0.0_f64);
        for v in values {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if hi - lo <= f64::EPSILON {
            hi = lo + 1.0;
        }
        let step = nice_step((hi - lo) / 5.0);
        Scale {
            min: (lo / step).floor() * step,
            max: (hi / step).ceil() * step,
            step,
        }
    }

    /// The same axis, starting at zero when all values are positive (bars grow from zero).
    fn including_zero(self) -> Scale {
        Scale {
            min: self.min.min(0.0),
            ..self
        }
    }

    fn frac(&self, v: f64) -> f64 {
        ((v - self.min) / (self.max - self.min)).clamp(0.0, 1.0)
    }

    fn ticks(&self) -> Vec<f64> {
        let count = ((self.max - self.min) / self.step).round() as usize;
        (0..=count.min(20))
            .map(|i| self.min + self.step * i as f64)
            .collect()
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !raw.is_finite() || raw <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    let mantissa = raw / power;
    let nice = if mantissa <= 1.0 {
        1.0
    } else if mantissa <= 2.0 {
        2.0
    } else if mantissa <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * power
}

/// A coordinate, to one decimal (enough at this size, and the markup stays short).
fn n(v: f64) -> String {
    let rounded = (v * 10.0).round() / 10.0;
    if rounded == rounded.trunc() {
        format!("{}", rounded as i64)
    } else {
        format!("{rounded:.1}")
    }
}

/// A figure for people: at most two decimals, no trailing zeros.
fn num(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// The width `text` takes at `size`, estimated: CJK and other wide characters a full em, the
/// rest a little over half.
fn text_width(text: &str, size: f64) -> f64 {
    text.chars()
        .map(|c| if is_wide(c) { size } else { size * 0.6 })
        .sum()
}

fn is_wide(c: char) -> bool {
    matches!(c as u32, 0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x20000..=0x3FFFD)
}

/// `text`, cut with "…" so that it fits `max_w` at `size`.
fn fit(text: &str, max_w: f64, size: f64) -> String {
    if text_width(text, size) <= max_w {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut width = size; // room for the ellipsis
    for c in text.chars() {
        width += if is_wide(c) { size } else { size * 0.6 };
        if width > max_w {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::{Timestamp, ToSpan};

    /// The markup parses as XML, its root is an `<svg>` that names itself for screen readers
    /// and scales, and nothing in it runs or loads anything.
    fn check_svg(markup: &Markup) -> roxmltree::Document<'_> {
        let svg = markup.0.as_str();
        let doc = match roxmltree::Document::parse(svg) {
            Ok(doc) => doc,
            Err(e) => panic!("not well-formed XML: {e}\n{svg}"),
        };
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(root.attribute("role"), Some("img"));
        assert!(root.attribute("aria-label").is_some_and(|l| !l.is_empty()));
        assert!(root.attribute("viewBox").is_some());
        assert!(
            root.children()
                .find(|n| n.is_element())
                .is_some_and(|n| n.tag_name().name() == "title"),
            "first child is the <title>: {svg}"
        );
        for node in doc.descendants().filter(|n| n.is_element()) {
            assert_ne!(node.tag_name().name(), "script", "{svg}");
            assert_ne!(node.tag_name().name(), "image", "{svg}");
            assert_ne!(node.tag_name().name(), "foreignObject", "{svg}");
            for attr in node.attributes() {
                assert!(!attr.name().starts_with("on"), "event handler {attr:?}");
                if attr.name() == "href" {
                    assert!(!attr.value().starts_with("javascript:"), "{attr:?}");
                }
            }
        }
        doc
    }

    fn texts(doc: &roxmltree::Document<'_>) -> String {
        doc.descendants()
            .filter(|n| n.is_text())
            .filter_map(|n| n.text())
            .collect::<Vec<_>>()
            .join("|")
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn line(series: Vec<Series>, target: Option<f64>) -> LineChart {
        LineChart {
            title: "Exposure <tier-1> & \"friends\"".into(),
            y_unit: "hours".into(),
            from: ts("2026-10-01T00:00:00Z"),
            to: ts("2026-12-31T00:00:00Z"),
            series,
            target,
            target_label: "RPO target".into(),
        }
    }

    #[test]
    fn rag_worst_and_labels() {
        let cases = [
            (Rag::Grey, Rag::Green, Rag::Green),
            (Rag::Green, Rag::Amber, Rag::Amber),
            (Rag::Red, Rag::Amber, Rag::Red),
            (Rag::Grey, Rag::Grey, Rag::Grey),
            (Rag::Red, Rag::Grey, Rag::Red),
        ];
        for (a, b, worst) in cases {
            assert_eq!(a.worst(b), worst, "{a:?} {b:?}");
            assert_eq!(b.worst(a), worst, "{b:?} {a:?}");
        }
        assert_eq!(Rag::Amber.label(Lang::En), "Amber");
        assert_eq!(Rag::Red.label(Lang::ZhCn), "红");
        assert_eq!(Rag::Grey.label(Lang::ZhCn), "无数据");
        assert_eq!(serde_json::json!(Rag::Green), serde_json::json!("Green"));
    }

    #[test]
    fn line_chart_escapes_labels_and_draws_each_series_with_its_own_dash() {
        let from = ts("2026-10-01T00:00:00Z");
        let series = vec![
            Series {
                label: "tier-1 <script>alert(1)</script>".into(),
                points: vec![
                    (from, 2.0),
                    (from + 240.hours(), 30.0),
                    (from + 480.hours(), f64::NAN),
                    (from + 720.hours(), 4.0),
                ],
            },
            Series {
                label: "tier-2".into(),
                points: vec![(from + 24.hours(), 10.0), (from + 900.hours(), 12.0)],
            },
        ];
        let markup = line_chart(&line(series, Some(24.0)), Lang::En);
        let doc = check_svg(&markup);
        assert!(!markup.0.contains("<script>"), "{}", markup.0);
        let all = texts(&doc);
        for expected in [
            "Exposure <tier-1> & \"friends\"",
            "tier-1 <script>alert(1)</script>",
            "tier-2",
            "Time (UTC)",
            "hours",
            "RPO target 24",
            "2026-10-01",
            "2026-12-31",
        ] {
            assert!(all.contains(expected), "{expected:?} in {all}");
        }
        let lines: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("polyline"))
            .collect();
        assert_eq!(lines.len(), 2);
        // The NaN point is left out.
        let first = lines[0].attribute("points").unwrap_or_default();
        assert_eq!(first.split(' ').count(), 3, "{first}");
        assert_ne!(
            lines[0].attribute("stroke-dasharray"),
            lines[1].attribute("stroke-dasharray")
        );
    }

    #[test]
    fn line_chart_empty_single_point_and_chinese_axes() {
        let empty = line_chart(&line(vec![], None), Lang::ZhCn);
        let doc = check_svg(&empty);
        let all = texts(&doc);
        assert!(all.contains("无数据"), "{all}");
        assert!(all.contains("时间（UTC）"), "{all}");

        let outside = Series {
            label: "late".into(),
            points: vec![(ts("2027-03-01T00:00:00Z"), 5.0)],
        };
        let doc_markup = line_chart(&line(vec![outside], None), Lang::En);
        let doc = check_svg(&doc_markup);
        assert!(texts(&doc).contains("No data"));

        let single = Series {
            label: "one".into(),
            points: vec![(ts("2026-11-01T00:00:00Z"), 5.0)],
        };
        let markup = line_chart(&line(vec![single], None), Lang::En);
        let doc = check_svg(&markup);
        assert_eq!(
            doc.descendants()
                .filter(|n| n.has_tag_name("circle"))
                .count(),
            1
        );
        assert!(!texts(&doc).contains("No data"));

        // A range shorter than two days is labelled with times; a reversed one does not panic.
        let mut short = line(vec![], None);
        short.to = short.from + 6.hours();
        let doc_markup = line_chart(&short, Lang::En);
        assert!(texts(&check_svg(&doc_markup)).contains("10-01 06:00"));
        let mut reversed = line(vec![], None);
        std::mem::swap(&mut reversed.from, &mut reversed.to);
        check_svg(&line_chart(&reversed, Lang::En));
    }

    #[test]
    fn heat_map_cells_links_gaps_and_legend() {
        let map = HeatMap {
            title: "Compliance 合规".into(),
            rows: vec!["Linfen 临汾".into(), "Taiyuan <HQ>".into()],
            cols: vec!["tier-1".into(), "tier-2".into(), "tier-3".into()],
            cells: vec![
                vec![
                    Some(HeatCell {
                        rag: Rag::Red,
                        text: "31h".into(),
                        href: Some("/systems?branch=linfen&tier=1&x=\"y\"".into()),
                    }),
                    None,
                    Some(HeatCell {
                        rag: Rag::Green,
                        text: "100%".into(),
                        href: None,
                    }),
                ],
                // A ragged row: the missing cells are gaps.
                vec![Some(HeatCell {
                    rag: Rag::Amber,
                    text: "90% & more".into(),
                    href: None,
                })],
            ],
        };
        for lang in [Lang::En, Lang::ZhCn] {
            let markup = heat_map(&map, lang);
            let doc = check_svg(&markup);
            let all = texts(&doc);
            for expected in ["Taiyuan <HQ>", "31h", "90% & more", "—", "Linfen 临汾"] {
                assert!(all.contains(expected), "{expected:?} in {all}");
            }
            for rag in [Rag::Green, Rag::Amber, Rag::Red, Rag::Grey] {
                assert!(all.contains(rag.label(lang)), "{rag:?} in {all}");
            }
            let links: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("a")).collect();
            assert_eq!(links.len(), 1);
            assert_eq!(
                links[0].attribute("href"),
                Some("/systems?branch=linfen&tier=1&x=\"y\"")
            );
            // Three gaps: one None, two missing from the ragged row.
            assert_eq!(all.matches('—').count(), 3, "{all}");
        }
        let empty = HeatMap {
            title: "empty".into(),
            rows: vec![],
            cols: vec![],
            cells: vec![],
        };
        assert!(texts(&check_svg(&heat_map(&empty, Lang::ZhCn))).contains("无数据"));
    }

    #[test]
    fn bar_chart_values_targets_never_measured_and_both_languages() {
        let chart = BarChart {
            title: "RTO vs target".into(),
            unit: "h".into(),
            bars: vec![
                Bar {
                    label: "core-banking 核心系统".into(),
                    value: Some(2.5),
                    target: Some(4.0),
                    rag: Rag::Green,
                    note: String::new(),
                },
                Bar {
                    label: "mail <x>".into(),
                    value: Some(30.0),
                    target: Some(24.0),
                    rag: Rag::Red,
                    note: "extrapolated & slow".into(),
                },
                Bar {
                    label: "a very long system name that will not fit in the label column at all"
                        .into(),
                    value: None,
                    target: Some(8.0),
                    rag: Rag::Grey,
                    note: String::new(),
                },
            ],
        };
        let markup = bar_chart(&chart, Lang::En);
        let doc = check_svg(&markup);
        let all = texts(&doc);
        for expected in [
            "2.5 h / target 4 h · Green",
            "30 h / target 24 h · Red",
            "— / target 8 h · No data",
            "never measured",
            "extrapolated & slow",
            "mail <x>",
            "core-banking 核心系统",
        ] {
            assert!(all.contains(expected), "{expected:?} in {all}");
        }
        // The long label is cut, and whole in its tooltip.
        assert!(all.contains('…'), "{all}");
        assert!(all.contains("will not fit in the label column at all"));
        // Two bars drawn (with their RAG class), one outline for the bar never measured.
        let classes: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("rect"))
            .filter_map(|n| n.attribute("class"))
            .collect();
        assert_eq!(classes, ["rag-green", "rag-red", "rag-grey"]);

        let zh = bar_chart(&chart, Lang::ZhCn);
        let all = texts(&check_svg(&zh));
        assert!(all.contains("2.5 h / 目标 4 h · 绿"), "{all}");
        assert!(all.contains("未测量"), "{all}");

        // All bars unmeasured and no target: an axis still, no division by zero.
        let none = BarChart {
            title: "none".into(),
            unit: "h".into(),
            bars: vec![Bar {
                label: "x".into(),
                value: None,
                target: None,
                rag: Rag::Grey,
                note: String::new(),
            }],
        };
        let markup = bar_chart(&none, Lang::En);
        assert!(!markup.0.contains("NaN") && !markup.0.contains("inf"));
        check_svg(&markup);
        let empty = BarChart {
            title: "empty".into(),
            unit: "h".into(),
            bars: vec![],
        };
        assert!(texts(&check_svg(&bar_chart(&empty, Lang::En))).contains("No data"));
    }

    #[test]
    fn scales_and_numbers() {
        let s = Scale::over([0.3, 7.2].into_iter());
        assert_eq!((s.min, s.max, s.step), (0.0, 8.0, 2.0));
        let s = Scale::over([-3.0, 12.0].into_iter());
        assert_eq!((s.min, s.max, s.step), (-5.0, 15.0, 5.0));
        let s = Scale::over(std::iter::empty());
        assert_eq!((s.min, s.max), (0.0, 1.0));
        assert_eq!(num(2.5), "2.5");
        assert_eq!(num(24.0), "24");
        assert_eq!(num(1.0 / 3.0), "0.33");
        assert_eq!(num(-0.001), "0");
        assert_eq!(n(12.345), "12.3");
        assert_eq!(fit("核心系统核心系统", 50.0, 10.0), "核心系统…");
        assert_eq!(fit("short", 100.0, 10.0), "short");
    }

    #[test]
    fn print_css_has_the_page_rules_and_the_cjk_fonts() {
        for expected in [
            "@page",
            "size: A4",
            "h2.section",
            ".rag-green",
            ".rag-amber",
            ".rag-red",
            ".rag-grey",
            "\"Noto Sans CJK SC\", \"Noto Sans SC\", \"Source Han Sans SC\", \"PingFang SC\", \"Microsoft YaHei\", sans-serif",
        ] {
            assert!(PRINT_CSS.contains(expected), "{expected}");
        }
    }
}
