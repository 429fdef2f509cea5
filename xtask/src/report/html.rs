//! `OUT/report.html`: the Markdown report as one self-contained page — figures embedded as
//! base64 PNGs, no scripts, no external files — for readers without a Markdown viewer.
//!
//! The Markdown is parsed by pulldown-cmark (tables, `$…$` / `$$…$$` maths); images become
//! figures with their PNG embedded (`base64` crate), and maths is rendered as Unicode text
//! ([`tex_to_text`]): no script, so the page stays self-contained.

use std::path::Path;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;line-height:1.5;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}\
th{background:#f3f3f3}img{max-width:100%;display:block;margin:.5em 0}figure{margin:1em 0}\
figcaption{color:#555;font-size:.9em}blockquote{border-left:4px solid #e0a000;background:#fff8e0;margin:1em 0;padding:.5em 1em}\
code{background:#f3f3f3;padding:0 .2em}.math{font-family:serif;font-style:italic}.math.display{display:block;text-align:center;margin:.6em 0}";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The TeX of the report's formulas as readable Unicode (`\beta` → β, `^\top` → ᵀ,
/// `\tfrac12` → ½, `E_1` → E₁, …); braces and unknown macros' backslashes are dropped.
pub fn tex_to_text(tex: &str) -> String {
    const MACROS: &[(&str, &str)] = &[
        ("\\underbrace", ""),
        ("\\text", ""),
        ("\\mathrm", ""),
        ("\\mathbb{R}", "ℝ"),
        ("\\tfrac12", "½"),
        ("\\tfrac", ""),
        ("^\\top", "ᵀ"),
        ("\\top", "ᵀ"),
        ("^{-1}", "⁻¹"),
        ("^2", "²"),
        ("\\beta", "β"),
        ("\\nabla", "∇"),
        ("\\partial", "∂"),
        ("\\sum", "Σ"),
        ("\\times", "×"),
        ("\\ne", "≠"),
        ("\\ge", "≥"),
        ("\\le", "≤"),
        ("\\in", "∈"),
        ("\\lVert", "‖"),
        ("\\rVert", "‖"),
        ("\\sqrt", "√"),
        ("\\arg\\min", "argmin "),
        ("\\max", "max"),
        ("\\min", "min"),
        ("\\log", "log "),
        ("\\,", " "),
        ("\\ ", " "),
        ("_1", "₁"),
        ("_2", "₂"),
        ("_i", "ᵢ"),
        ("_j", "ⱼ"),
        ("_t", "ₜ"),
        ("_{t+1}", "ₜ₊₁"),
        ("_{ii}", "ᵢᵢ"),
        ("_{ij}", "ᵢⱼ"),
    ];
    let mut out = tex.to_string();
    for (from, to) in MACROS {
        out = out.replace(from, to);
    }
    out.replace(['{', '}', '\\'], "")
}

/// The page for `markdown`, whose image paths are relative to `base`.
pub fn render(markdown: &str, base: &Path, title: &str) -> String {
    use base64::Engine as _;
    use pulldown_cmark::{html, Event, Options, Parser, Tag, TagEnd};
    let mut events: Vec<Event> = Vec::new();
    // An image's caption: its alt text, gathered until the image ends.
    let mut figure: Option<(String, String)> = None;
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES | Options::ENABLE_MATH) {
        match (event, &mut figure) {
            (Event::Start(Tag::Image { dest_url, .. }), _) => {
                figure = Some((dest_url.to_string(), String::new()))
            }
            (Event::End(TagEnd::Image), fig) => {
                let (path, caption) = fig.take().unwrap_or_default();
                let html = match std::fs::read(base.join(&path)) {
                    Ok(png) => format!(
                        "<figure><img alt=\"{0}\" src=\"data:image/png;base64,{1}\"><figcaption>{0}</figcaption></figure>",
                        escape(&caption),
                        base64::engine::general_purpose::STANDARD.encode(&png)
                    ),
                    Err(_) => format!("<em>missing figure {}</em>", escape(&path)),
                };
                events.push(Event::InlineHtml(html.into()));
            }
            (Event::Text(t) | Event::Code(t), Some((_, caption))) => caption.push_str(&t),
            (_, Some(_)) => {}
            (Event::InlineMath(tex), None) => events.push(Event::InlineHtml(
                format!("<span class=\"math\">{}</span>", escape(&tex_to_text(&tex))).into(),
            )),
            (Event::DisplayMath(tex), None) => events.push(Event::InlineHtml(
                format!(
                    "<span class=\"math display\">{}</span>",
                    escape(&tex_to_text(&tex))
                )
                .into(),
            )),
            // The report means no raw HTML: any in its text is shown as text.
            (Event::Html(h) | Event::InlineHtml(h), None) => events.push(Event::Text(h)),
            (e, None) => events.push(e),
        }
    }
    let mut body = String::new();
    html::push_html(&mut body, events.into_iter());
    // An image alone in its paragraph is a figure, which a paragraph may not hold.
    let body = body
        .replace("<p><figure>", "<figure>")
        .replace("</figure></p>", "</figure>");
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head>\n<body>\n{body}</body></html>\n",
        escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tex_becomes_readable_text() {
        assert_eq!(
            tex_to_text("\\nabla^2 E_1 = I, q_{t+1} = X^\\top \\mathrm{softmax}(\\beta X q_t)"),
            "∇² E₁ = I, qₜ₊₁ = Xᵀ softmax(β X qₜ)"
        );
        let html = render(
            "energy $E = \\tfrac12 q^\\top q$ and\n\n$$x \\ge 0$$\n",
            Path::new("."),
            "t",
        );
        assert!(
            html.contains("<span class=\"math\">E = ½ qᵀ q</span>"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"math display\">x ≥ 0</span>"),
            "{html}"
        );
    }

    #[test]
    fn tables_headings_images_and_escapes() {
        let dir = std::env::temp_dir().join(format!("html-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.png"), b"PNG").unwrap();
        let md = "# Title <x>\n\n| a | b \\| c |\n|---|---|\n| `1` | **2** |\n\n![cap \"quoted\"](a.png)\n\n![gone](b.png)\n\n- one\n- two\n";
        let html = render(md, &dir, "t");
        assert!(html.contains("<h1>Title &lt;x&gt;</h1>"), "{html}");
        assert!(html.contains("<th>b | c</th>"), "{html}");
        assert!(html.contains("<td><code>1</code></td><td><strong>2</strong></td>"));
        assert!(html.contains("src=\"data:image/png;base64,UE5H\""));
        assert!(html.contains("alt=\"cap &quot;quoted&quot;\""), "{html}");
        assert!(html.contains("missing figure b.png"));
        assert!(html.contains("<li>one</li>\n<li>two</li>"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
