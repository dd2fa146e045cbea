//! Link previews (Discord's `embeds`): what media made of the links in a message's text, after
//! it was sent. Their images are fetched by Natter and served through media's own signed URLs,
//! so a viewer's address never reaches the site linked.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Snowflake;

/// The most links of one message that are previewed, as on Discord.
pub const MAX_EMBEDS: usize = 5;

/// What an embed shows, as Discord names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EmbedType {
    /// A page without a kind of its own.
    Link,
    /// A page that says it is an article (`og:type` article).
    Article,
    /// A link straight to an image.
    Image,
    /// A page that says it is a video (`og:type` video.*).
    Video,
}

/// One link's preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Embed {
    #[serde(rename = "type")]
    pub kind: EmbedType,
    /// The link as it is in the message.
    pub url: String,
    /// At most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// At most 350 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The site (`og:site_name`, oEmbed's `provider_name`, or the host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<EmbedProvider>,
    /// The page's image, fetched by Natter and served by media.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<EmbedThumbnail>,
    /// The side bar's colour (`theme-color`), `0xRRGGBB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EmbedProvider {
    pub name: String,
}

/// A preview's image: a copy media made (at most 400 pixels a side), never the site's own URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EmbedThumbnail {
    /// Media's signed URL of the copy (expires; every copy of the message carries a fresh one).
    pub url: String,
    /// The same URL (Discord's field for its media proxy; here media is that proxy).
    pub proxy_url: String,
    pub width: u32,
    pub height: u32,
    /// Natter's id of the copy, under its message's files.
    pub id: Snowflake,
}

impl EmbedThumbnail {
    /// The name the copy is stored and served under.
    pub const FILENAME: &str = "thumbnail";
}

/// Cuts `s` to at most `max` characters (an ellipsis marks a cut), trimmed; `None` when empty.
pub fn clip(s: &str, max: usize) -> Option<String> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.chars().count() <= max {
        return Some(s.to_owned());
    }
    let mut cut: String = s.chars().take(max - 1).collect();
    cut.push('…');
    Some(cut)
}

/// The links in a message's text that get a preview, in order, each once, at most
/// [`MAX_EMBEDS`]: `http` and `https` links outside code, except those in angle brackets
/// (`<https://…>`, which suppresses one link's preview, as on Discord).
pub fn links(content: &str) -> Vec<url::Url> {
    let mut found: Vec<url::Url> = Vec::new();
    for (text, in_code) in code_split(content) {
        if in_code {
            continue;
        }
        let mut rest = text;
        while let Some(start) = find_scheme(rest) {
            let before = &rest[..start];
            let tail = &rest[start..];
            let end = tail
                .find(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"')
                .unwrap_or(tail.len());
            let mut raw = &tail[..end];
            let bracketed = before.ends_with('<') && tail[end..].starts_with('>');
            rest = &tail[end..];
            // Punctuation that ends a sentence is not part of the link.
            while let Some(last) = raw.chars().last() {
                let unbalanced_paren =
                    last == ')' && raw.matches('(').count() < raw.matches(')').count();
                if matches!(
                    last,
                    '.' | ',' | ':' | ';' | '!' | '?' | '\'' | '*' | '_' | '~' | '|'
                ) || unbalanced_paren
                {
                    raw = &raw[..raw.len() - last.len_utf8()];
                } else {
                    break;
                }
            }
            if bracketed {
                continue;
            }
            let Ok(url) = url::Url::parse(raw) else {
                continue;
            };
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                continue;
            }
            if !found.contains(&url) {
                found.push(url);
            }
            if found.len() == MAX_EMBEDS {
                return found;
            }
        }
    }
    found
}

fn find_scheme(s: &str) -> Option<usize> {
    let lower = s.to_ascii_lowercase();
    match (lower.find("http://"), lower.find("https://")) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The text in pieces, each marked whether it is code (between backticks, one or three).
fn code_split(content: &str) -> Vec<(&str, bool)> {
    let mut out = Vec::new();
    let mut rest = content;
    loop {
        let Some(open) = rest.find('`') else {
            out.push((rest, false));
            return out;
        };
        let fence = if rest[open..].starts_with("```") {
            "```"
        } else {
            "`"
        };
        let body = open + fence.len();
        match rest[body..].find(fence) {
            Some(close) => {
                out.push((&rest[..open], false));
                out.push((&rest[body..body + close], true));
                rest = &rest[body + close + fence.len()..];
            }
            None => {
                out.push((rest, false));
                return out;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(content: &str) -> Vec<String> {
        links(content).into_iter().map(String::from).collect()
    }

    #[test]
    fn links_in_text_are_found_in_order_once_each() {
        assert_eq!(
            strs("see https://a.example/x, and http://b.example/ then https://a.example/x."),
            ["https://a.example/x", "http://b.example/"]
        );
    }

    #[test]
    fn a_link_in_angle_brackets_gets_no_preview() {
        assert_eq!(
            strs("<https://a.example/> https://b.example/"),
            ["https://b.example/"]
        );
    }

    #[test]
    fn links_in_code_get_no_preview() {
        assert!(strs("`https://a.example/` ```\nhttps://b.example/\n```").is_empty());
    }

    #[test]
    fn at_most_five_links_are_previewed() {
        let text: Vec<String> = (0..8).map(|i| format!("https://{i}.example/")).collect();
        assert_eq!(strs(&text.join(" ")).len(), MAX_EMBEDS);
    }

    #[test]
    fn other_schemes_are_not_links() {
        assert!(strs("ftp://a.example/ javascript:alert(1) file:///etc/passwd").is_empty());
    }

    #[test]
    fn a_closing_parenthesis_belongs_to_a_link_only_when_it_opened_one() {
        assert_eq!(
            strs("(see https://en.example/wiki/A_(b))"),
            ["https://en.example/wiki/A_(b)"]
        );
    }

    #[test]
    fn long_text_is_clipped_with_an_ellipsis() {
        assert_eq!(clip("  abcdef ", 4).as_deref(), Some("abc…"));
        assert_eq!(clip("   ", 4), None);
    }
}
