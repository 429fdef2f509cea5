//! `OUT/report.html`: the Markdown report as one self-contained page — figures embedded as
//! base64 PNGs, no scripts, no external files — for readers without a Markdown viewer.
//!
//! The Markdown is parsed by pulldown-cmark (tables, `$…$` / `$$…$$` maths); images become
//! figures with their PNG embedded (`base64` crate), and maths becomes MathML
//! ([`tex_to_mathml`], by `pulldown-latex`), which browsers draw natively: no script, so the
//! page stays self-contained.

use std::path::Path;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;line-height:1.5;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}\
th{background:#f3f3f3}img{max-width:100%;display:block;margin:.5em 0}figure{margin:1em 0}\
figcaption{color:#555;font-size:.9em}blockquote{border-left:4px solid #e0a000;background:#fff8e0;margin:1em 0;padding:.5em 1em}\
code{background:#f3f3f3;padding:0 .2em;overflow-wrap:anywhere}math[display=block]{margin:.6em 0;overflow-x:auto;max-width:100%}\
table{display:block;overflow-x:auto;max-width:100%}";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A formula as MathML (`display` for a block of its own), with its TeX kept as the
/// annotation; a macro the renderer does not know shows in red in place, never breaks the page.
pub fn tex_to_mathml(tex: &str, display: bool) -> String {
    use pulldown_latex::config::{DisplayMode, RenderConfig};
    let storage = pulldown_latex::Storage::new();
    let parser = pulldown_latex::Parser::new(tex, &storage);
    let config = RenderConfig {
        display_mode: if display {
            DisplayMode::Block
        } else {
            DisplayMode::Inline
        },
        annotation: Some(tex),
        ..RenderConfig::default()
    };
    let mut out = String::new();
    match pulldown_latex::mathml::push_mathml(&mut out, parser, config) {
        // pulldown-latex 0.8 escapes the `&nbsp;` it writes for `\ ` a second time.
        Ok(()) => out.replace("&amp;nbsp;", "&#160;"),
        Err(_) => format!("<code>{}</code>", escape(tex)),
    }
}

/// A heading's anchor: `Q3 — Phoneme-to-grapheme seq2seq` → `q3-phoneme-to-grapheme-seq2seq`.
pub fn slug(heading: &str) -> String {
    let mut out = String::new();
    for c in heading.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// The page for `markdown`, whose image paths are relative to `base`.
pub fn render(markdown: &str, base: &Path, title: &str) -> String {
    use base64::Engine as _;
    use pulldown_cmark::{html, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
    let mut events: Vec<Event> = Vec::new();
    // An image's caption: its alt text, gathered until the image ends.
    let mut figure: Option<(String, String)> = None;
    // A section heading (`##`) being read: where its start event is, and its text, which
    // becomes its `id` so that sections can be linked (`report.html#q3-…`).
    let mut heading: Option<(usize, String)> = None;
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES | Options::ENABLE_MATH) {
        match (&event, &mut heading) {
            (Event::Start(Tag::Heading { level, .. }), _) if *level == HeadingLevel::H2 => {
                heading = Some((events.len(), String::new()))
            }
            (Event::Text(t) | Event::Code(t), Some((_, text))) => text.push_str(t),
            (Event::End(TagEnd::Heading(HeadingLevel::H2)), Some((at, text))) => {
                if let Event::Start(Tag::Heading { id, .. }) = &mut events[*at] {
                    *id = Some(slug(text).into());
                }
                heading = None;
            }
            _ => {}
        }
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
            (Event::InlineMath(tex), None) => {
                events.push(Event::InlineHtml(tex_to_mathml(&tex, false).into()))
            }
            (Event::DisplayMath(tex), None) => {
                events.push(Event::InlineHtml(tex_to_mathml(&tex, true).into()))
            }
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
    fn maths_becomes_mathml() {
        let html = render(
            "energy $E = \\tfrac12 q^\\top q$ and\n\n$$x \\ge 0$$\n",
            Path::new("."),
            "t",
        );
        assert!(html.contains("<math"), "{html}");
        assert!(html.contains("display=\"block\""), "{html}");
        assert!(html.contains("<mfrac>"), "{html}");
        assert!(html.contains("≥"), "{html}");
        assert!(!html.contains("$"), "{html}");
        // Every formula of the report's derivations renders without an error mark.
        let derivations = include_str!("../../../assets/q1_derivations.md");
        let page = render(derivations, Path::new("."), "t");
        assert!(page.matches("<math").count() > 30, "{page}");
        assert!(!page.contains("merror"), "{page}");
        assert!(page.contains("<munder"), "the energy's underbraces: {page}");
        assert!(!page.contains("&amp;nbsp;"), "{page}");
    }

    #[test]
    fn tables_headings_images_and_escapes() {
        let dir = std::env::temp_dir().join(format!("html-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.png"), b"PNG").unwrap();
        let md = "# Title <x>\n\n| a | b \\| c |\n|---|---|\n| `1` | **2** |\n\n![cap \"quoted\"](a.png)\n\n![gone](b.png)\n\n- one\n- two\n";
        let html = render(md, &dir, "t");
        assert!(html.contains("<h1>Title &lt;x&gt;</h1>"), "{html}");
        let sections = render(
            "## Q3 — Phoneme-to-grapheme seq2seq\n\n## Speed\n",
            &dir,
            "t",
        );
        assert!(
            sections.contains(
                "<h2 id=\"q3-phoneme-to-grapheme-seq2seq\">Q3 — Phoneme-to-grapheme seq2seq</h2>"
            ) && sections.contains("<h2 id=\"speed\">"),
            "{sections}"
        );
        assert!(html.contains("<th>b | c</th>"), "{html}");
        assert!(html.contains("<td><code>1</code></td><td><strong>2</strong></td>"));
        assert!(html.contains("src=\"data:image/png;base64,UE5H\""));
        assert!(html.contains("alt=\"cap &quot;quoted&quot;\""), "{html}");
        assert!(html.contains("missing figure b.png"));
        assert!(html.contains("<li>one</li>\n<li>two</li>"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
