//! Rendering of workflow steps with minijinja: sandboxed (no file system, no includes), HTML
//! bodies autoescaped, every render bounded in CPU (fuel) and output size, so a template cannot
//! hang or flood a node. Error messages name the problem and line, never the data.

use chimatic_domain::{RenderedMessage, WorkflowStep};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

/// Instructions a render may execute; plenty for notification templates, finite for loops.
const FUEL: u64 = 100_000;
/// Largest rendered field.
pub const MAX_RENDERED_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("`{field}` is not a valid template: {reason}")]
    Syntax { field: &'static str, reason: String },
    #[error("`{field}` could not be rendered: {reason}")]
    Render { field: &'static str, reason: String },
    #[error("`{field}` rendered to more than {MAX_RENDERED_BYTES} bytes")]
    TooLarge { field: &'static str },
}

pub struct Renderer {
    env: Environment<'static>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl Renderer {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_fuel(Some(FUEL));
        env.set_recursion_limit(32);
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
        Self { env }
    }

    /// Checks every template of a step parses (at workflow creation, so a bad template is a
    /// 422 then, not a failed delivery later).
    pub fn check(&self, step: &WorkflowStep) -> Result<(), TemplateError> {
        for (field, source, _) in fields(step) {
            self.env.template_from_str(source).map_err(|e| TemplateError::Syntax { field, reason: describe(&e) })?;
        }
        Ok(())
    }

    /// Renders a step with `context` (e.g. `{"subscriber": {...}, "data": {...}}`).
    pub fn render(&self, step: &WorkflowStep, context: &serde_json::Value) -> Result<RenderedMessage, TemplateError> {
        let mut out = RenderedMessage::default();
        for (field, source, html) in fields(step) {
            let name = if html { "step.html" } else { "step.txt" };
            let rendered = self
                .env
                .render_named_str(name, source, minijinja::value::Serde(context))
                .map_err(|e| TemplateError::Render { field, reason: describe(&e) })?;
            if rendered.len() > MAX_RENDERED_BYTES {
                return Err(TemplateError::TooLarge { field });
            }
            match field {
                "subject" => out.subject = Some(rendered),
                "title" => out.title = Some(rendered),
                "html" => out.html = Some(rendered),
                _ => out.text = rendered,
            }
        }
        Ok(out)
    }
}

/// The templated fields of a step: name, source, and whether it is HTML.
fn fields(step: &WorkflowStep) -> Vec<(&'static str, &str, bool)> {
    let mut out = vec![("text", step.text.as_str(), false)];
    if let Some(s) = &step.subject {
        out.push(("subject", s, false));
    }
    if let Some(s) = &step.title {
        out.push(("title", s, false));
    }
    if let Some(s) = &step.html {
        out.push(("html", s, true));
    }
    out
}

/// The kind of error and where, without the template's data (which may be personal).
fn describe(e: &minijinja::Error) -> String {
    let line = e.line().map(|l| format!(" (line {l})")).unwrap_or_default();
    format!("{}{line}", e.kind())
}

#[cfg(test)]
mod tests {
    use chimatic_domain::ChannelKind;
    use serde_json::json;

    use super::*;

    fn step(text: &str, html: Option<&str>) -> WorkflowStep {
        WorkflowStep {
            channel: ChannelKind::Email,
            integration_id: None,
            fallback_integration_id: None,
            failover_after: None,
            subject: Some("Order {{ data.order }}".into()),
            text: text.into(),
            html: html.map(str::to_string),
            title: None,
        }
    }

    #[test]
    fn renders_fields_and_escapes_only_html() {
        let r = Renderer::new();
        let s = step("Hi {{ subscriber.name }}: {{ data.note }}", Some("<p>{{ data.note }}</p>"));
        let ctx = json!({"subscriber": {"name": "Ann"}, "data": {"order": 42, "note": "<b>&</b>"}});
        let out = r.render(&s, &ctx).unwrap();
        assert_eq!(out.subject.as_deref(), Some("Order 42"));
        assert_eq!(out.text, "Hi Ann: <b>&</b>");
        assert_eq!(out.html.as_deref(), Some("<p>&lt;b&gt;&amp;&lt;&#x2f;b&gt;</p>"));
    }

    #[test]
    fn bad_templates_are_refused_without_echoing_data() {
        let r = Renderer::new();
        assert!(matches!(r.check(&step("{{ unclosed", None)), Err(TemplateError::Syntax { field: "text", .. })));
        let err = r.render(&step("{{ data.secret | nosuchfilter }}", None), &json!({"data": {"secret": "s3cr3t"}}));
        let err = err.unwrap_err().to_string();
        assert!(!err.contains("s3cr3t"), "{err}");
    }

    #[test]
    fn runaway_templates_stop() {
        let r = Renderer::new();
        let looping = step("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}", None);
        assert!(matches!(r.render(&looping, &json!({})), Err(TemplateError::Render { .. })));
        // No file system: includes of any name fail.
        let include = step("{% include '/etc/passwd' %}", None);
        assert!(r.render(&include, &json!({})).is_err());
    }
}
