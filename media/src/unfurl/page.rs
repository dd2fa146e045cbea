//! What a page says about itself: OpenGraph (`og:`), Twitter card (`twitter:`) and plain
//! `<meta>` tags, `<title>`, `theme-color`, and the oEmbed document it points at. Parsed with
//! `tl`, which reads any tag soup without failing; only tags and attributes are looked at.

use proto::api::embeds::{EmbedType, clip};
use url::Url;

/// Discord's limits on an embed's text.
const MAX_TITLE: usize = 256;
const MAX_DESCRIPTION: usize = 350;
const MAX_SITE: usize = 256;

/// What a page gave for its preview.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PageData {
    pub title: Option<String>,
    pub description: Option<String>,
    pub site: Option<String>,
    pub image: Option<Url>,
    pub kind: Option<EmbedType>,
    pub color: Option<u32>,
    /// The oEmbed JSON document the page names (`<link rel="alternate"
    /// type="application/json+oembed">`).
    pub oembed: Option<Url>,
}

impl PageData {
    /// Reads `html`, whose address (after redirects) is `base`.
    pub fn read(html: &str, base: &Url) -> Self {
        let Ok(dom) = tl::parse(html, tl::ParserOptions::default()) else {
            return Self::default();
        };
        let parser = dom.parser();
        let mut meta: Vec<(String, String)> = Vec::new();
        let mut title_tag = None;
        let mut oembed = None;
        for node in dom.nodes() {
            let Some(tag) = node.as_tag() else {
                continue;
            };
            let attr = |name: &str| {
                tag.attributes()
                    .get(name)
                    .flatten()
                    .map(|v| decode_entities(&v.as_utf8_str()))
            };
            match tag.name().as_utf8_str().to_ascii_lowercase().as_str() {
                "meta" => {
                    let key = attr("property").or_else(|| attr("name"));
                    if let (Some(key), Some(content)) = (key, attr("content")) {
                        meta.push((key.to_ascii_lowercase(), content));
                    }
                }
                "title" if title_tag.is_none() => {
                    title_tag = Some(decode_entities(&tag.inner_text(parser)));
                }
                "link" if oembed.is_none() => {
                    let json = attr("type")
                        .is_some_and(|t| t.eq_ignore_ascii_case("application/json+oembed"));
                    if json && let Some(href) = attr("href") {
                        oembed = base.join(&href).ok();
                    }
                }
                _ => {}
            }
        }
        let first = |keys: &[&str]| {
            keys.iter().find_map(|k| {
                meta.iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.clone())
            })
        };
        let kind = first(&["og:type"]).map(|t| {
            let t = t.to_ascii_lowercase();
            if t == "article" {
                EmbedType::Article
            } else if t.starts_with("video") {
                EmbedType::Video
            } else {
                EmbedType::Link
            }
        });
        Self {
            title: first(&["og:title", "twitter:title"])
                .or(title_tag)
                .and_then(|t| clip(&t, MAX_TITLE)),
            description: first(&["og:description", "twitter:description", "description"])
                .and_then(|d| clip(&d, MAX_DESCRIPTION)),
            site: first(&["og:site_name"]).and_then(|s| clip(&s, MAX_SITE)),
            image: first(&[
                "og:image:secure_url",
                "og:image:url",
                "og:image",
                "twitter:image",
                "twitter:image:src",
            ])
            .and_then(|i| base.join(&i).ok()),
            kind,
            color: first(&["theme-color"]).and_then(|c| parse_color(&c)),
            oembed,
        }
    }

    /// Fills what the page left out from its oEmbed document.
    pub fn fill_from_oembed(&mut self, json: &[u8], base: &Url) {
        #[derive(serde::Deserialize)]
        struct OEmbed {
            title: Option<String>,
            provider_name: Option<String>,
            thumbnail_url: Option<String>,
        }
        let Ok(found) = serde_json::from_slice::<OEmbed>(json) else {
            return;
        };
        if self.title.is_none() {
            self.title = found.title.and_then(|t| clip(&t, MAX_TITLE));
        }
        if self.site.is_none() {
            self.site = found.provider_name.and_then(|s| clip(&s, MAX_SITE));
        }
        if self.image.is_none() {
            self.image = found.thumbnail_url.and_then(|u| base.join(&u).ok());
        }
    }
}

/// `#rrggbb` (or `#rgb`) as a number.
fn parse_color(c: &str) -> Option<u32> {
    let hex = c.trim().strip_prefix('#')?;
    let full: String = match hex.len() {
        3 => hex.chars().flat_map(|c| [c, c]).collect(),
        6 => hex.to_owned(),
        _ => return None,
    };
    u32::from_str_radix(&full, 16).ok()
}

/// The character references attribute values and titles commonly carry.
fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let name = &rest[1..end];
        let decoded = match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            _ => name
                .strip_prefix("#x")
                .or_else(|| name.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://site.example/a/page").unwrap()
    }

    #[test]
    fn opengraph_tags_give_the_preview() {
        let html = r##"<html><head><title>Plain title</title>
            <meta property="og:title" content="Natter &amp; friends">
            <meta property="og:description" content="A chat system">
            <meta property="og:site_name" content="Natter">
            <meta property="og:type" content="article">
            <meta property="og:image" content="/img/cover.png">
            <meta name="theme-color" content="#5865F2">
            </head><body>hi</body></html>"##;
        let data = PageData::read(html, &base());
        assert_eq!(data.title.as_deref(), Some("Natter & friends"));
        assert_eq!(data.description.as_deref(), Some("A chat system"));
        assert_eq!(data.site.as_deref(), Some("Natter"));
        assert_eq!(data.kind, Some(EmbedType::Article));
        assert_eq!(
            data.image.unwrap().as_str(),
            "https://site.example/img/cover.png"
        );
        assert_eq!(data.color, Some(0x5865F2));
    }

    #[test]
    fn twitter_cards_and_the_title_tag_fill_in_for_missing_opengraph() {
        let html = r#"<title>Only a &lt;title&gt;</title>
            <meta name="twitter:description" content="From the card">
            <meta name="twitter:image" content="https://cdn.example/i.jpg">"#;
        let data = PageData::read(html, &base());
        assert_eq!(data.title.as_deref(), Some("Only a <title>"));
        assert_eq!(data.description.as_deref(), Some("From the card"));
        assert_eq!(data.image.unwrap().as_str(), "https://cdn.example/i.jpg");
    }

    #[test]
    fn an_oembed_document_is_found_and_fills_the_gaps() {
        let html = r#"<link rel="alternate" type="application/json+oembed" href="/oembed?u=1">"#;
        let mut data = PageData::read(html, &base());
        assert_eq!(
            data.oembed.as_ref().unwrap().as_str(),
            "https://site.example/oembed?u=1"
        );
        data.fill_from_oembed(
            br#"{"title": "From oEmbed", "provider_name": "Site", "thumbnail_url": "t.png"}"#,
            &base(),
        );
        assert_eq!(data.title.as_deref(), Some("From oEmbed"));
        assert_eq!(data.site.as_deref(), Some("Site"));
        assert_eq!(data.image.unwrap().as_str(), "https://site.example/a/t.png");
    }

    #[test]
    fn tag_soup_and_garbage_give_nothing_without_failing() {
        for html in [
            "",
            "<<<>>>",
            "<meta content=",
            "\u{0}\u{1}<title>",
            "<meta property=og:title>",
        ] {
            let _ = PageData::read(html, &base());
        }
    }

    #[test]
    fn long_titles_and_descriptions_are_clipped() {
        let html = format!(
            r#"<meta property="og:title" content="{}">"#,
            "t".repeat(1000)
        );
        let data = PageData::read(&html, &base());
        assert_eq!(data.title.unwrap().chars().count(), MAX_TITLE);
    }
}
