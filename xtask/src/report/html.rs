//! `OUT/report.html`: the Markdown report as one self-contained page — figures embedded as
//! base64 PNGs, no scripts, no external files — for readers without a Markdown viewer.
//!
//! Converts the subset of Markdown that the report writes: headings, paragraphs, `>` notes,
//! `-` lists, pipe tables, images, `**bold**` and `` `code` ``. `$…$` maths is rendered as
//! Unicode text ([`tex_to_text`]): no script, so the page stays self-contained.

use std::fmt::Write as _;
use std::path::Path;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;line-height:1.5;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}\
th{background:#f3f3f3}img{max-width:100%;display:block;margin:.5em 0}figure{margin:1em 0}\
figcaption{color:#555;font-size:.9em}blockquote{border-left:4px solid #e0a000;background:#fff8e0;margin:1em 0;padding:.5em 1em}\
code{background:#f3f3f3;padding:0 .2em}.math{font-family:serif;font-style:italic}div.math{text-align:center;margin:.6em 0}";

/// Base64 (standard alphabet, padded).
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

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

/// Inline markup: `code`, **bold**, `$maths$`, and `\|` in table cells.
fn inline(text: &str) -> String {
    let mut out = String::new();
    let text = escape(text).replace("\\|", "|");
    let mut rest = text.as_str();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("$$").or_else(|| rest.strip_prefix('$')) {
            let display = rest.starts_with("$$");
            if let Some(end) = r.find('$') {
                let (tag, close) = if display { ("div", 2) } else { ("span", 1) };
                let _ = write!(
                    out,
                    "<{tag} class=\"math\">{}</{tag}>",
                    tex_to_text(&r[..end])
                );
                rest = &r[(end + close).min(r.len())..];
                continue;
            }
        }
        if let Some(r) = rest.strip_prefix('`') {
            if let Some(end) = r.find('`') {
                let _ = write!(out, "<code>{}</code>", &r[..end]);
                rest = &r[end + 1..];
                continue;
            }
        }
        if let Some(r) = rest.strip_prefix("**") {
            if let Some(end) = r.find("**") {
                let _ = write!(out, "<strong>{}</strong>", &r[..end]);
                rest = &r[end + 2..];
                continue;
            }
        }
        let c = rest.chars().next().expect("non-empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn cells(line: &str) -> Vec<&str> {
    // Split on `|` that is not escaped as `\|`.
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut cells = Vec::new();
    let (mut start, bytes) = (0, inner.as_bytes());
    for i in 0..bytes.len() {
        if bytes[i] == b'|' && (i == 0 || bytes[i - 1] != b'\\') {
            cells.push(inner[start..i].trim());
            start = i + 1;
        }
    }
    cells.push(inner[start..].trim());
    cells
}

/// The page for `markdown`, whose image paths are relative to `base`.
pub fn render(markdown: &str, base: &Path, title: &str) -> String {
    let mut body = String::new();
    let lines: Vec<&str> = markdown.lines().collect();
    let mut i = 0;
    let mut paragraph: Vec<&str> = Vec::new();
    let flush = |body: &mut String, paragraph: &mut Vec<&str>| {
        if !paragraph.is_empty() {
            let text = paragraph.join(" ");
            let class = if text.starts_with("$$") {
                " class=\"math\""
            } else {
                ""
            };
            let _ = writeln!(body, "<p{class}>{}</p>", inline(&text));
            paragraph.clear();
        }
    };
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim();
        if t.is_empty() {
            flush(&mut body, &mut paragraph);
        } else if let Some(h) = t.strip_prefix('#') {
            flush(&mut body, &mut paragraph);
            let level = 1 + h.chars().take_while(|&c| c == '#').count();
            let _ = writeln!(
                body,
                "<h{level}>{}</h{level}>",
                inline(h.trim_start_matches('#').trim())
            );
        } else if let Some(q) = t.strip_prefix('>') {
            flush(&mut body, &mut paragraph);
            let _ = writeln!(body, "<blockquote>{}</blockquote>", inline(q.trim()));
        } else if t.starts_with('|') {
            flush(&mut body, &mut paragraph);
            body.push_str("<table>\n");
            let mut header = true;
            while i < lines.len() && lines[i].trim().starts_with('|') {
                let row = cells(lines[i]);
                if row
                    .iter()
                    .all(|c| !c.is_empty() && c.chars().all(|ch| ch == '-' || ch == ':'))
                {
                    header = false;
                    i += 1;
                    continue;
                }
                let tag = if header { "th" } else { "td" };
                body.push_str("<tr>");
                for c in row {
                    let _ = write!(body, "<{tag}>{}</{tag}>", inline(c));
                }
                body.push_str("</tr>\n");
                i += 1;
            }
            body.push_str("</table>\n");
            continue;
        } else if let Some(item) = t.strip_prefix("- ") {
            flush(&mut body, &mut paragraph);
            body.push_str("<ul>\n");
            let _ = writeln!(body, "<li>{}</li>", inline(item));
            while i + 1 < lines.len() && lines[i + 1].trim().starts_with("- ") {
                i += 1;
                let _ = writeln!(body, "<li>{}</li>", inline(&lines[i].trim()[2..]));
            }
            body.push_str("</ul>\n");
        } else if let (Some(rest), true) = (t.strip_prefix("!["), t.ends_with(')')) {
            flush(&mut body, &mut paragraph);
            let (caption, path) = rest.split_once("](").unwrap_or((rest, ""));
            let path = path.trim_end_matches(')');
            match std::fs::read(base.join(path)) {
                Ok(png) => {
                    let _ = writeln!(
                        body,
                        "<figure><img alt=\"{0}\" src=\"data:image/png;base64,{1}\"><figcaption>{0}</figcaption></figure>",
                        escape(caption),
                        base64(&png)
                    );
                }
                Err(_) => {
                    let _ = writeln!(body, "<p><em>missing figure {}</em></p>", escape(path));
                }
            }
        } else {
            paragraph.push(t);
        }
        i += 1;
    }
    flush(&mut body, &mut paragraph);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head>\n<body>\n{body}</body></html>\n",
        escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
    }

    #[test]
    fn tex_becomes_readable_text() {
        assert_eq!(
            tex_to_text("\\nabla^2 E_1 = I, q_{t+1} = X^\\top \\mathrm{softmax}(\\beta X q_t)"),
            "∇² E₁ = I, qₜ₊₁ = Xᵀ softmax(β X qₜ)"
        );
        let html = inline("energy $E = \\tfrac12 q^\\top q$ and $$x \\ge 0$$ end");
        assert!(
            html.contains("<span class=\"math\">E = ½ qᵀ q</span>"),
            "{html}"
        );
        assert!(
            html.contains("<div class=\"math\">x ≥ 0</div> end"),
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
