//! How the log detail shows a payload: chat messages as a conversation (OpenAI-style requests
//! and responses, Anthropic content blocks, OpenTelemetry GenAI message lists), other JSON
//! pretty-printed, anything else as plain text.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Shown {
    /// (role, text) per message.
    Chat(Vec<(String, String)>),
    Json(String),
    Text(String),
}

pub fn show(text: &str) -> Shown {
    let Ok(v) = serde_json::from_str::<Value>(text.trim()) else {
        return Shown::Text(text.to_string());
    };
    if !(v.is_object() || v.is_array()) {
        return Shown::Text(text.to_string());
    }
    if let Some(chat) = chat_messages(&v) {
        return Shown::Chat(chat);
    }
    Shown::Json(serde_json::to_string_pretty(&v).unwrap_or_else(|_| text.to_string()))
}

/// The messages of a chat request or response, if it is one.
fn chat_messages(v: &Value) -> Option<Vec<(String, String)>> {
    let list: Vec<&Value> = if let Some(a) = v.as_array() {
        a.iter().collect()
    } else if let Some(a) = v.get("messages").and_then(Value::as_array) {
        // A request; a system prompt given apart (Anthropic) comes first.
        let mut out: Vec<&Value> = Vec::new();
        if let Some(system) = v.get("system") {
            out.push(system);
        }
        out.extend(a.iter());
        out
    } else if let Some(choices) = v.get("choices").and_then(Value::as_array) {
        choices.iter().filter_map(|c| c.get("message").or_else(|| c.get("delta"))).collect()
    } else if v.get("role").is_some() && v.get("content").is_some() {
        vec![v]
    } else {
        return None;
    };
    let mut out = Vec::new();
    for m in list {
        if let Some(s) = m.as_str() {
            out.push(("system".to_string(), s.to_string()));
            continue;
        }
        let role = m.get("role").and_then(Value::as_str)?;
        let content = m.get("content").or_else(|| m.get("parts")).map(content_text).unwrap_or_default();
        out.push((role.to_string(), content));
    }
    (!out.is_empty()).then_some(out)
}

/// Text of a message's content: a string, or the text parts of a list of blocks.
fn content_text(c: &Value) -> String {
    match c {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p {
                Value::String(s) => s.clone(),
                _ => p
                    .get("text")
                    .or_else(|| p.get("content"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| p.to_string()),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(pairs: &[(&str, &str)]) -> Shown {
        Shown::Chat(pairs.iter().map(|(r, t)| (r.to_string(), t.to_string())).collect())
    }

    #[test]
    fn openai_request_and_response_are_conversations() {
        let req = r#"{"model":"gpt-4o","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi [EMAIL]"}]}"#;
        assert_eq!(show(req), chat(&[("system", "Be brief."), ("user", "Hi [EMAIL]")]));
        let resp = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"}}]}"#;
        assert_eq!(show(resp), chat(&[("assistant", "Hello!")]));
    }

    #[test]
    fn content_blocks_and_genai_parts_are_joined() {
        let req = r#"{"system":"Rules","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}"#;
        assert_eq!(show(req), chat(&[("system", "Rules"), ("user", "a\nb")]));
        let genai = r#"[{"role":"user","parts":[{"type":"text","content":"What is 2+2?"}]}]"#;
        assert_eq!(show(genai), chat(&[("user", "What is 2+2?")]));
    }

    #[test]
    fn other_json_is_pretty_and_text_stays_text() {
        assert_eq!(show(r#"{"a":1}"#), Shown::Json("{\n  \"a\": 1\n}".into()));
        assert_eq!(show("[1,2]"), Shown::Json("[\n  1,\n  2\n]".into()));
        assert_eq!(show("plain words"), Shown::Text("plain words".into()));
        assert_eq!(show("42"), Shown::Text("42".into()));
        // A list of things that are not messages is JSON, not a chat.
        assert!(matches!(show(r#"[{"x":1}]"#), Shown::Json(_)));
    }
}
