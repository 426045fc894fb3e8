//! One-line prompts (dial, route edits, search, paths) and yes/no questions.

use std::path::PathBuf;

use ratatui_textarea::TextArea;

use super::State;
use crate::tui::action::Action;
use crate::tui::effect::Effect;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PromptKind {
    Dial,
    AddRoute,
    EditRoute(String),
    Search,
    SavePath,
    TokenPath,
    LoadPlan,
    JqFilter,
    PeerFilter,
    HealthFilter,
    /// `:` commands and the context picker.
    Command,
}

pub struct Prompt {
    pub kind: PromptKind,
    pub title: String,
    pub input: TextArea<'static>,
    pub error: Option<String>,
    /// What one may type, under the input while there is no error.
    pub hint: Option<String>,
}

impl Prompt {
    pub fn new(kind: PromptKind, title: &str, initial: &str) -> Self {
        let mut input = TextArea::from(vec![initial.to_string()]);
        input.move_cursor(ratatui_textarea::CursorMove::End);
        Self {
            kind,
            title: title.to_string(),
            input,
            error: None,
            hint: None,
        }
    }

    /// The typed text on one line, trimmed.
    pub fn text(&self) -> String {
        self.input.lines().join(" ").trim().to_string()
    }

    /// The same prompt again, saying what was wrong.
    pub fn with_error(self, error: String) -> Self {
        Self {
            error: Some(error),
            ..self
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Question {
    Quit,
    DeleteRoute(String),
}

/// A route as typed in the add/edit prompt: `NAME URL [stream|unary]`.
#[derive(Debug, PartialEq, Eq)]
pub struct RouteLine {
    pub name: String,
    pub url: String,
    pub stream: bool,
}

pub fn parse_route_line(text: &str) -> Result<RouteLine, String> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let stream = match parts.get(2).copied() {
        None | Some("unary") | Some("false") | Some("no") => false,
        Some("stream") | Some("true") | Some("yes") => true,
        Some(other) => {
            return Err(format!(
                "third word must be 'stream' or 'unary', not {other:?}"
            ))
        }
    };
    match parts.as_slice() {
        [name, url, ..] if url.starts_with("http://") || url.starts_with("https://") => {
            Ok(RouteLine {
                name: name.to_string(),
                url: url.to_string(),
                stream,
            })
        }
        _ => Err("write: NAME URL [stream|unary], URL starting with http:// or https://".into()),
    }
}

impl State {
    /// While a question is open only its answer and outside news get in.
    pub(super) fn answer_question(
        &mut self,
        question: Question,
        action: &Action,
    ) -> Option<Vec<Effect>> {
        if let Action::Confirm(yes) = action {
            self.question = None;
            return Some(match (question, yes) {
                (Question::Quit, true) => {
                    self.quit = true;
                    vec![Effect::Quit]
                }
                (Question::DeleteRoute(name), true) => vec![Effect::RemoveRoute(name)],
                _ => vec![],
            });
        }
        let news = matches!(
            action,
            Action::Node(_)
                | Action::CallNumbered { .. }
                | Action::NodeEventsMissed(_)
                | Action::CallHead { .. }
                | Action::CallBytes { .. }
                | Action::CallEnded { .. }
                | Action::Log(..)
                | Action::Peers(_)
                | Action::SubnetStats { .. }
                | Action::Listening(_)
                | Action::Routes(_)
                | Action::Notice(_)
                | Action::RemoteRoutes { .. }
                | Action::ForceQuit
        );
        (!news).then(Vec::new)
    }

    /// Enter in the open prompt: its effects, or the prompt again with
    /// what is wrong.
    pub(super) fn submit_prompt(&mut self) -> Vec<Effect> {
        let Some(prompt) = self.prompt.take() else {
            return vec![];
        };
        let text = prompt.text();
        match prompt.kind.clone() {
            PromptKind::Dial => match crate::node::parse_peer_addr(&text) {
                Ok(_) => return vec![Effect::Dial(text)],
                Err(e) => self.prompt = Some(prompt.with_error(e.to_string())),
            },
            PromptKind::AddRoute | PromptKind::EditRoute(_) => match parse_route_line(&text) {
                Ok(r) => {
                    let mut effects = vec![Effect::UpsertRoute {
                        name: r.name.clone(),
                        url: r.url,
                        stream: r.stream,
                    }];
                    if let PromptKind::EditRoute(old) = prompt.kind {
                        if old != r.name {
                            effects.push(Effect::RemoveRoute(old));
                        }
                    }
                    return effects;
                }
                Err(e) => self.prompt = Some(prompt.with_error(e)),
            },
            PromptKind::Search => self.output.set_search(text),
            PromptKind::Command => match self.run_command(&text) {
                Ok(effects) => return effects,
                Err(e) => self.prompt = Some(prompt.with_error(e)),
            },
            PromptKind::PeerFilter => match super::peers::PeerFilter::parse(&text) {
                Ok(f) => self.peers.set_filter(f),
                Err(e) => self.prompt = Some(prompt.with_error(e)),
            },
            PromptKind::HealthFilter => match super::peers::PeerFilter::parse(&text) {
                Ok(f) => self.health.set_filter(f),
                Err(e) => self.prompt = Some(prompt.with_error(e)),
            },
            PromptKind::JqFilter if text.is_empty() => {
                self.output.jq = None;
                self.notice("jq filter off");
            }
            PromptKind::JqFilter => match crate::tui::jq::JqFilter::compile(&text) {
                Ok(f) => {
                    self.output.jq = Some(f);
                    self.notice(format!("jq {text}: on each event, or the whole body"));
                }
                Err(e) => self.prompt = Some(prompt.with_error(e)),
            },
            PromptKind::LoadPlan => match crate::load::LoadPlan::parse(&text) {
                Ok(plan) => return self.on_runs(crate::tui::action::RunsAction::StartLoad(plan)),
                Err(e) => self.prompt = Some(prompt.with_error(e)),
            },
            PromptKind::TokenPath => {
                let path = (!text.is_empty()).then_some(text);
                self.calls.token_path = path.clone();
                if let Some(c) = self.calls.selected_mut() {
                    c.output.set_token_path(path.clone());
                }
                self.notice(match path {
                    Some(p) => format!("token text from JSON path {p}"),
                    None => "token text from the common inference shapes".into(),
                });
            }
            PromptKind::SavePath => {
                if let Some(call) = self.selected_call().filter(|_| !text.is_empty()) {
                    return vec![Effect::Save {
                        id: call.id,
                        path: PathBuf::from(text),
                    }];
                }
            }
        }
        vec![]
    }
}
