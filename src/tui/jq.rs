//! jq filters on response bodies and events, with jaq (a maintained jq
//! implementation in Rust; its standard library included).

use jaq_core::data::JustLut;
use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Native, Vars};
use jaq_json::Val;

/// Most output lines one input may produce (`range(1e9)` must not fill
/// the console's memory).
pub const MAX_JQ_OUTPUTS: usize = 10_000;

type Data = JustLut<Val>;

/// A compiled filter, and the text it came from.
pub struct JqFilter {
    pub text: String,
    filter: jaq_core::compile::Filter<Native<Data>>,
}

impl std::fmt::Debug for JqFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JqFilter({:?})", self.text)
    }
}

impl JqFilter {
    /// Compiles `text`; the error says what is wrong with it.
    pub fn compile(text: &str) -> Result<Self, String> {
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let arena = Arena::default();
        let modules = Loader::new(defs)
            .load(
                &arena,
                File {
                    code: text,
                    path: (),
                },
            )
            .map_err(|errs| {
                let first = errs.into_iter().next().map(|(_, e)| describe_load(&e));
                format!("jq: cannot read {text:?}: {}", first.unwrap_or_default())
            })?;
        let filter = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errs| {
                let names: Vec<String> = errs
                    .into_iter()
                    .flat_map(|(_, es)| es)
                    .map(|(name, _)| name.to_string())
                    .collect();
                format!(
                    "jq: {text:?} uses what jq does not define: {}",
                    names.join(", ")
                )
            })?;
        Ok(Self {
            text: text.to_string(),
            filter,
        })
    }

    /// The filter's outputs for one JSON text, each as compact JSON; an
    /// input that is not JSON or a filter error is a line saying so.
    pub fn apply(&self, json: &[u8]) -> Vec<String> {
        let input = match jaq_json::read::parse_single(json) {
            Ok(v) => v,
            Err(e) => return vec![format!("(not JSON: {e})")],
        };
        let ctx = Ctx::<Data>::new(&self.filter.lut, Vars::new([]));
        self.filter
            .id
            .run((ctx, input))
            .map(jaq_core::unwrap_valr)
            .take(MAX_JQ_OUTPUTS)
            .map(|out| match out {
                Ok(v) => v.to_string(),
                Err(e) => format!("(jq error: {e})"),
            })
            .collect()
    }
}

fn describe_load(e: &jaq_core::load::Error<&str>) -> String {
    use jaq_core::load::Error;
    let near = |rest: &str| rest.chars().take(20).collect::<String>();
    match e {
        Error::Io(_) => "it imports a module, which the console does not load".into(),
        Error::Lex(errs) => errs
            .first()
            .map(|(expected, rest)| format!("expected {} near {:?}", expected.as_str(), near(rest)))
            .unwrap_or_default(),
        Error::Parse(errs) => errs
            .first()
            .map(|(expected, rest)| format!("expected {} near {:?}", expected.as_str(), near(rest)))
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_picks_from_json_and_says_what_is_wrong() {
        let f = JqFilter::compile(".choices[0].delta.content").unwrap();
        let event = br#"{"choices":[{"delta":{"content":"Peers"}}]}"#;
        assert_eq!(f.apply(event), [r#""Peers""#]);
        let f = JqFilter::compile(".items[] | select(.n > 1) | .name").unwrap();
        let body = br#"{"items":[{"n":1,"name":"a"},{"n":2,"name":"b"},{"n":3,"name":"c"}]}"#;
        assert_eq!(f.apply(body), [r#""b""#, r#""c""#]);
        assert_eq!(
            JqFilter::compile("keys")
                .unwrap()
                .apply(br#"{"b":1,"a":2}"#),
            [r#"["a","b"]"#]
        );
        assert!(f.apply(b"data: [DONE]")[0].starts_with("(not JSON"));
        assert!(JqFilter::compile(".a | ")
            .unwrap_err()
            .starts_with("jq: cannot read"));
        let e = JqFilter::compile("nosuchfn(1)").unwrap_err();
        assert!(e.contains("nosuchfn"), "{e}");
        assert!(JqFilter::compile(".a").unwrap().apply(b"[1]")[0].starts_with("(jq error"));
        assert_eq!(
            JqFilter::compile("range(1e9)")
                .unwrap()
                .apply(b"null")
                .len(),
            MAX_JQ_OUTPUTS
        );
    }
}
