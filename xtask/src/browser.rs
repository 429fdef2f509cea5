//! `cargo xtask screenshot`: `report.html` as people read it, in headless Chromium at a
//! laptop's and a phone's width. Each view is checked — every figure loaded, the maths drawn
//! as MathML, nothing wider than the window — and photographed for the README.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// A window size the report must read well at.
#[derive(Debug, Clone, Copy)]
pub struct View {
    /// Its name, in file names and messages.
    pub name: &'static str,
    /// CSS pixels.
    pub width: u32,
    /// CSS pixels.
    pub height: u32,
}

/// The views checked: a laptop and a phone.
pub const VIEWS: [View; 2] = [
    View {
        name: "laptop",
        width: 1366,
        height: 900,
    },
    View {
        name: "phone",
        width: 390,
        height: 844,
    },
];

/// What the page reported about itself once loaded.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Seen {
    /// `<img>` elements.
    pub images: usize,
    /// Of those, how many did not load.
    pub broken: usize,
    /// How far the page is wider than the window, CSS pixels (≤ 0: it fits).
    pub overflow: i64,
    /// `<math>` elements.
    pub maths: usize,
    /// Of those, how many the browser laid out with a size (drawn as MathML).
    pub maths_drawn: usize,
}

impl Seen {
    /// Whatever is wrong with the view, one phrase each.
    pub fn faults(&self) -> Vec<String> {
        let mut faults = Vec::new();
        if self.broken > 0 {
            faults.push(format!(
                "{} of {} figures did not load",
                self.broken, self.images
            ));
        }
        if self.overflow > 0 {
            faults.push(format!(
                "the page is {} px wider than the window",
                self.overflow
            ));
        }
        if self.maths_drawn < self.maths {
            faults.push(format!(
                "{} of {} formulas were not drawn",
                self.maths - self.maths_drawn,
                self.maths
            ));
        }
        faults
    }
}

/// Measures the page in the browser once everything has loaded, into `data-seen` on <body>.
const PROBE: &str = r#"<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const maths = [...document.getElementsByTagName('math')];
  document.body.setAttribute('data-seen', JSON.stringify({
    images: imgs.length,
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length,
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    maths: maths.length,
    maths_drawn: maths.filter(m => m.getBoundingClientRect().width > 0).length,
  }));
});
</script>"#;

/// The Chromium to run: `CHROMIUM` if set, else the first of Debian's and Google's names
/// on the PATH.
pub fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find(|name| crate::succeeds(name, &["--version"]))
        .map(PathBuf::from)
}

fn browser(exe: &Path, view: View) -> Command {
    let mut c = Command::new(exe);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--allow-file-access-from-files",
        "--virtual-time-budget=20000",
    ])
    .arg(format!("--window-size={},{}", view.width, view.height));
    c
}

/// The `data-seen` attribute in a dumped DOM.
fn parse_seen(dom: &str) -> Result<Seen> {
    let start = dom
        .find("data-seen=\"")
        .context("the page never finished loading (no data-seen in its DOM)")?
        + "data-seen=\"".len();
    let end = start + dom[start..].find('"').context("unterminated data-seen")?;
    let json = dom[start..end]
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    serde_json::from_str(&json).with_context(|| format!("reading data-seen {json:?}"))
}

/// Loads `html` at `view` and reports what the page saw.
pub fn check(exe: &Path, html: &Path, view: View) -> Result<Seen> {
    let page =
        std::fs::read_to_string(html).with_context(|| format!("reading {}", html.display()))?;
    let Some(at) = page.rfind("</body>") else {
        bail!("{} has no </body>: not a report page", html.display());
    };
    let probe = html.with_file_name(format!(".probe-{}.html", std::process::id()));
    std::fs::write(&probe, format!("{}{PROBE}{}", &page[..at], &page[at..]))?;
    let url = format!("file://{}", probe.canonicalize()?.display());
    let out = browser(exe, view).arg("--dump-dom").arg(&url).output();
    let _ = std::fs::remove_file(&probe);
    let out = out.with_context(|| format!("running {}", exe.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed on {}: {}",
            exe.display(),
            html.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    parse_seen(&String::from_utf8_lossy(&out.stdout))
        .with_context(|| format!("{} at {} px", html.display(), view.width))
}

/// A PNG of the top of the page at `view`, written to `png`.
pub fn screenshot(exe: &Path, html: &Path, view: View, png: &Path) -> Result<()> {
    let url = format!("file://{}", html.canonicalize()?.display());
    // Chromium writes the file itself: into a temporary, then renamed (never half a PNG).
    // (Chromium picks the format by the extension, so the temporary ends in .png.)
    let tmp = png.with_extension(format!("{}.tmp.png", std::process::id()));
    let out = browser(exe, view)
        .arg(format!("--screenshot={}", tmp.display()))
        .arg(&url)
        .output()
        .with_context(|| format!("running {}", exe.display()))?;
    if !out.status.success() || !tmp.exists() {
        let _ = std::fs::remove_file(&tmp);
        bail!(
            "{} wrote no screenshot of {}: {}",
            exe.display(),
            html.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    std::fs::rename(&tmp, png).with_context(|| format!("writing {}", png.display()))
}

/// `cargo xtask screenshot`: checks `OUT/report.html` at every view, failing with what is
/// wrong, and writes `report-<view>.png` into `to`, plus `report-<section>.png` at the laptop
/// width for each section whose anchor starts with one of `sections` (`q3`).
pub fn run(out: &Path, to: &Path, sections: &[String]) -> Result<()> {
    let html = out.join("report.html");
    if !html.exists() {
        bail!(
            "{} does not exist: run `cargo xtask reproduce` first (or pass --out DIR of a run)",
            html.display()
        );
    }
    let exe = chromium().context(
        "headless Chromium is needed and none was found: install it (Debian: sudo apt-get install chromium), or name it with CHROMIUM=/path/to/chrome",
    )?;
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let mut faults = Vec::new();
    for view in VIEWS {
        let seen = check(&exe, &html, view)?;
        eprintln!(
            "{} ({}×{}): {} figures, {} broken; {} formulas, {} drawn; overflow {} px",
            view.name,
            view.width,
            view.height,
            seen.images,
            seen.broken,
            seen.maths,
            seen.maths_drawn,
            seen.overflow.max(0)
        );
        faults.extend(
            seen.faults()
                .into_iter()
                .map(|f| format!("{}: {f}", view.name)),
        );
        let png = to.join(format!("report-{}.png", view.name));
        screenshot(&exe, &html, view, &png)?;
        eprintln!("  wrote {}", png.display());
    }
    let page = std::fs::read_to_string(&html)?;
    for prefix in sections {
        let Some(anchor) = page
            .split("<h2 id=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .find(|id| id.starts_with(prefix.as_str()))
        else {
            bail!(
                "{} has no section whose anchor starts with '{prefix}'",
                html.display()
            );
        };
        // The section alone on a page of the same style (the figures are embedded, so the
        // copy needs nothing beside it).
        let start = page
            .find(&format!("<h2 id=\"{anchor}\""))
            .expect("the anchor was found in the page");
        let end = page[start + 4..].find("<h2 ").map_or_else(
            || page.rfind("</body>").unwrap_or(page.len()),
            |e| start + 4 + e,
        );
        let head = &page[..page.find("<body>").map_or(0, |b| b + "<body>".len())];
        let excerpt = html.with_file_name(format!(".section-{}.html", std::process::id()));
        std::fs::write(
            &excerpt,
            format!("{head}\n{}</body></html>\n", &page[start..end]),
        )?;
        let png = to.join(format!("report-{prefix}.png"));
        let shot = screenshot(&exe, &excerpt, VIEWS[0], &png);
        let _ = std::fs::remove_file(&excerpt);
        shot?;
        eprintln!("  wrote {} (#{anchor})", png.display());
    }
    if !faults.is_empty() {
        bail!(
            "{} does not read well: {}",
            html.display(),
            faults.join("; ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_page_saw_is_read_and_judged() {
        let dom = r#"<body data-seen="{&quot;images&quot;:12,&quot;broken&quot;:1,&quot;overflow&quot;:35,&quot;maths&quot;:40,&quot;maths_drawn&quot;:38}">"#;
        let seen = parse_seen(dom).unwrap();
        assert_eq!(seen.images, 12);
        assert_eq!(
            seen.faults(),
            [
                "1 of 12 figures did not load",
                "the page is 35 px wider than the window",
                "2 of 40 formulas were not drawn"
            ]
        );
        let fine = Seen {
            overflow: 0,
            broken: 0,
            maths_drawn: 40,
            ..seen
        };
        assert!(fine.faults().is_empty());
        assert!(parse_seen("<body>").is_err());
    }
}
