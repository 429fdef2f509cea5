//! Google Drive: large files answer with an HTML "can't scan for viruses" page whose form
//! leads to the real download.

use std::path::Path;

use anyhow::{bail, Result};

use crate::{download, Expected, Fetched};

/// Drive's public download endpoint.
pub const DRIVE_URL: &str = "https://drive.google.com/uc";

/// If `html` is Drive's confirm page, the URL its download form submits to.
pub fn confirm_url(html: &str, page_url: &str) -> Option<String> {
    let form_start = html.find("<form")?;
    let form = &html[form_start..];
    let form = &form[..form.find("</form>").unwrap_or(form.len())];
    let action = attr(form, "action")?;
    let action = action.replace("&amp;", "&");
    let action = if action.starts_with("http") {
        action
    } else {
        // A relative action: resolve against the page's origin.
        let origin: String = page_url
            .splitn(4, '/')
            .take(3)
            .collect::<Vec<_>>()
            .join("/");
        format!(
            "{origin}{}",
            if action.starts_with('/') {
                action
            } else {
                format!("/{action}")
            }
        )
    };
    let mut query = Vec::new();
    for input in form.split("<input").skip(1) {
        let tag = &input[..input.find('>').unwrap_or(input.len())];
        if let (Some(name), Some(value)) = (attr(tag, "name"), attr(tag, "value")) {
            query.push(format!(
                "{}={}",
                encode(&name),
                encode(&value.replace("&amp;", "&"))
            ));
        }
    }
    if query.is_empty() {
        return None;
    }
    let sep = if action.contains('?') { '&' } else { '?' };
    Some(format!("{action}{sep}{}", query.join("&")))
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!("{name}=\"");
    let start = tag.find(&key)? + key.len();
    let len = tag[start..].find('"')?;
    Some(tag[start..start + len].to_string())
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Downloads Drive file `id` to `dest` (verified, resumable). `base` is [`DRIVE_URL`]
/// except in tests. When the first answer is the confirm page, its form is followed.
pub fn google_drive(
    base: &str,
    id: &str,
    dest: &Path,
    expected: &Expected,
    log: &mut dyn FnMut(&str),
) -> Result<Fetched> {
    if crate::is_valid(dest, expected)? {
        return Ok(Fetched::AlreadyValid);
    }
    let first = format!("{base}?export=download&id={id}");
    let resp = ureq::get(&first)
        .call()
        .map_err(|e| anyhow::anyhow!("GET {first}: {e}"))?;
    let is_html = resp
        .header("Content-Type")
        .is_some_and(|t| t.starts_with("text/html"));
    let url = if is_html {
        let page_url = resp.get_url().to_string();
        let html = resp.into_string()?;
        match confirm_url(&html, &page_url) {
            Some(url) => {
                log("Google Drive asked to confirm the download of a large file; following its form");
                url
            }
            None => bail!("Google Drive answered {first} with a page that is neither the file nor its confirm form (is the file shared publicly? quota exceeded?)"),
        }
    } else {
        // Small files come straight away; fetch again through the resumable path.
        drop(resp);
        first
    };
    download(&url, dest, expected, log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_confirm_form() {
        let html = r#"<html><body><p>Google Drive can't scan this file for viruses.</p>
        <form id="download-form" action="https://drive.usercontent.google.com/download" method="get">
        <input type="submit" id="uc-download-link" value="Download anyway"/>
        <input type="hidden" name="id" value="1Ds7hPKMuorR7Ad38ww0_DYIwM9Km_cgc">
        <input type="hidden" name="export" value="download">
        <input type="hidden" name="confirm" value="t">
        <input type="hidden" name="uuid" value="a b&amp;c"></form></body></html>"#;
        assert_eq!(
            confirm_url(html, "https://drive.google.com/uc?id=x").unwrap(),
            "https://drive.usercontent.google.com/download?id=1Ds7hPKMuorR7Ad38ww0_DYIwM9Km_cgc&export=download&confirm=t&uuid=a%20b%26c"
        );
        let relative =
            r#"<form action="/download"><input type="hidden" name="id" value="z"></form>"#;
        assert_eq!(
            confirm_url(relative, "http://127.0.0.1:9/uc?x").unwrap(),
            "http://127.0.0.1:9/download?id=z"
        );
        assert_eq!(
            confirm_url("<html>quota exceeded</html>", "http://x/"),
            None
        );
    }
}
