//! Attention maps: panels of weights in [0, 1], each with a title, its row labels (what was
//! produced) and column labels (what was attended to), side by side, as PNG and SVG.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::{err, register_fonts};

/// One matrix of weights with labelled rows and columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    /// Caption above the panel, one line per `\n`.
    pub title: String,
    /// One label per row.
    pub rows: Vec<String>,
    /// One label per column.
    pub columns: Vec<String>,
    /// `rows × columns` values, 0 (white) to 1 (dark).
    pub values: Vec<Vec<f64>>,
}

/// Panels in a grid of `per_row` panels per line.
#[derive(Debug, Clone, PartialEq)]
pub struct HeatmapGrid {
    /// Caption above the grid.
    pub title: String,
    /// The panels, in reading order.
    pub panels: Vec<Heatmap>,
    /// Panels per line.
    pub per_row: usize,
}

const CELL: i32 = 22;
const LABEL: i32 = 30;
const LINE: i32 = 20;
const GAP: i32 = 30;
const TITLE: i32 = 20;

/// A width the text of `chars` characters at `size` pixels surely fits in (DejaVu Sans
/// averages about 0.55 em a character).
fn text_width(chars: usize, size: i32) -> i32 {
    (chars as f64 * size as f64 * 0.62).ceil() as i32
}

impl Heatmap {
    fn caption_lines(&self) -> Vec<&str> {
        self.title.lines().collect()
    }

    fn size(&self) -> (i32, i32) {
        let cols = self.columns.len() as i32;
        let rows = self.rows.len() as i32;
        let caption = self.caption_lines();
        let widest = caption.iter().map(|l| l.chars().count()).max().unwrap_or(0);
        let width = (LABEL + cols * CELL).max(text_width(widest, 16));
        (width, caption.len() as i32 * LINE + 6 + LABEL + rows * CELL)
    }

    fn check(&self) -> Result<()> {
        if self.values.len() != self.rows.len()
            || self.values.iter().any(|r| r.len() != self.columns.len())
        {
            bail!(
                "panel '{}': {} row labels and {} column labels for a {}-row matrix",
                self.title,
                self.rows.len(),
                self.columns.len(),
                self.values.len()
            );
        }
        Ok(())
    }

    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        (x0, y0): (i32, i32),
    ) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let label = ("sans-serif", 15).into_font();
        let centred = Pos::new(HPos::Center, VPos::Center);
        let caption = self.caption_lines();
        for (i, line) in caption.iter().enumerate() {
            let at = (x0, y0 + i as i32 * LINE);
            area.draw(&Text::new(
                line.to_string(),
                at,
                ("sans-serif", 16).into_font(),
            ))
            .map_err(err)?;
        }
        let top = y0 + caption.len() as i32 * LINE + 6 + LABEL;
        let left = x0 + LABEL;
        for (c, name) in self.columns.iter().enumerate() {
            let x = left + c as i32 * CELL + CELL / 2;
            area.draw(&Text::new(
                name.clone(),
                (x, top - LABEL / 2),
                TextStyle::from(label.clone()).pos(centred),
            ))
            .map_err(err)?;
        }
        for (r, (name, row)) in self.rows.iter().zip(&self.values).enumerate() {
            let y = top + r as i32 * CELL;
            area.draw(&Text::new(
                name.clone(),
                (x0 + LABEL / 2, y + CELL / 2),
                TextStyle::from(label.clone()).pos(centred),
            ))
            .map_err(err)?;
            for (c, &v) in row.iter().enumerate() {
                let v = if v.is_finite() {
                    v.clamp(0.0, 1.0)
                } else {
                    0.0
                };
                // White to a dark blue.
                let mix = |full: f64, dark: f64| (full + (dark - full) * v).round() as u8;
                let colour = RGBColor(mix(255.0, 8.0), mix(255.0, 48.0), mix(255.0, 107.0));
                let x = left + c as i32 * CELL;
                area.draw(&Rectangle::new(
                    [(x, y), (x + CELL, y + CELL)],
                    colour.filled(),
                ))
                .map_err(err)?;
                area.draw(&Rectangle::new(
                    [(x, y), (x + CELL, y + CELL)],
                    RGBColor(220, 220, 220).stroke_width(1),
                ))
                .map_err(err)?;
            }
        }
        Ok(())
    }
}

impl HeatmapGrid {
    /// Writes `<stem>.png` and `<stem>.svg`, each through a temporary sibling renamed into
    /// place; returns both paths.
    pub fn save(&self, stem: impl AsRef<Path>) -> Result<(PathBuf, PathBuf)> {
        for p in &self.panels {
            p.check()?;
        }
        let size = self.size();
        let png = stem.as_ref().with_extension("png");
        let svg = stem.as_ref().with_extension("svg");
        artifacts::with_temp_file(&png, |tmp| {
            self.render(BitMapBackend::new(tmp, size).into_drawing_area())
        })
        .with_context(|| format!("rendering {}", png.display()))?;
        artifacts::with_temp_file(&svg, |tmp| {
            self.render(SVGBackend::new(tmp, size).into_drawing_area())
        })
        .with_context(|| format!("rendering {}", svg.display()))?;
        Ok((png, svg))
    }

    /// Each line as wide as its panels, as tall as its tallest.
    fn lines(&self) -> Vec<&[Heatmap]> {
        self.panels.chunks(self.per_row.max(1)).collect()
    }

    fn size(&self) -> (u32, u32) {
        let (mut width, mut height) = (
            GAP + text_width(self.title.chars().count(), TITLE),
            2 * LINE + 10,
        );
        for line in self.lines() {
            let w: i32 = line.iter().map(|p| p.size().0 + GAP).sum();
            width = width.max(w + GAP);
            height += line.iter().map(|p| p.size().1).max().unwrap_or(0) + GAP;
        }
        (width.max(300) as u32, height as u32)
    }

    fn render<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        register_fonts();
        root.fill(&WHITE).map_err(err)?;
        root.draw(&Text::new(
            self.title.clone(),
            (GAP, 12),
            ("sans-serif", TITLE).into_font(),
        ))
        .map_err(err)?;
        let mut y = 2 * LINE + 10;
        for line in self.lines() {
            let mut x = GAP;
            for panel in line {
                panel.draw(&root, (x, y))?;
                x += panel.size().0 + GAP;
            }
            y += line.iter().map(|p| p.size().1).max().unwrap_or(0) + GAP;
        }
        root.present().map_err(err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grid_of_maps_is_written_as_png_and_svg_with_its_labels() {
        let dir = std::env::temp_dir().join(format!("heatmap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let panel = |title: &str| Heatmap {
            title: title.into(),
            rows: vec!["k".into(), "n".into(), "</s>".into()],
            columns: vec!["n".into(), "ɪ".into()],
            values: vec![vec![0.9, 0.1], vec![0.2, 0.8], vec![0.5, 0.5]],
        };
        let grid = HeatmapGrid {
            title: "Attention".into(),
            panels: vec![panel("knit, Bahdanau"), panel("knit, Hopfield")],
            per_row: 2,
        };
        let (png, svg) = grid.save(dir.join("maps")).unwrap();
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
        let info = decoder.read_info().unwrap().info().clone();
        assert_eq!((info.width, info.height), grid.size());
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.contains("ɪ") && text.contains("knit, Hopfield"));
        // A ragged matrix is refused, naming the panel.
        let bad = HeatmapGrid {
            panels: vec![Heatmap {
                values: vec![vec![1.0]],
                ..panel("ragged")
            }],
            ..grid
        };
        assert!(bad
            .save(dir.join("bad"))
            .unwrap_err()
            .to_string()
            .contains("ragged"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
