//! Prompts opened by keys: the command line (`:`), the context picker
//! (`C`) and the peer filter (`/` in Peers). `:ctx NAME`
//! switches an attached console to another node of the operator's
//! contexts; the console itself makes the new link (see `tui::switch`).

use super::prompt::{Prompt, PromptKind};
use super::State;
use crate::tui::action::{Action, CommandAction};
use crate::tui::effect::Effect;

/// What the command line understands, for its title and its errors.
const COMMANDS: &str = "ctx NAME · ctx · help · subnet · health · events · q";

impl State {
    pub(super) fn on_command(&mut self, action: CommandAction) -> Vec<Effect> {
        match action {
            CommandAction::Open => {
                self.prompt = Some(Prompt::new(
                    PromptKind::Command,
                    &format!("Command: {COMMANDS}"),
                    "",
                ));
            }
            CommandAction::PickContext => {
                let mut prompt = Prompt::new(
                    PromptKind::Command,
                    "Switch to context (a name, or its first letters)",
                    "ctx ",
                );
                prompt.hint = Some(self.context_list());
                self.prompt = Some(prompt);
            }
        }
        vec![]
    }

    /// The typed command: its effects, or an error for the prompt.
    pub(super) fn run_command(&mut self, text: &str) -> Result<Vec<Effect>, String> {
        let mut words = text.split_whitespace();
        let verb = words.next().unwrap_or("");
        let rest: Vec<&str> = words.collect();
        match (verb, rest.as_slice()) {
            ("ctx" | "context", []) => Err(self.context_list()),
            ("ctx" | "context", [name]) => self.switch_to(name),
            ("help" | "?", []) => Ok(self.update(Action::ToggleHelp)),
            ("subnet", []) => Ok(self.update(Action::ToggleSubnet)),
            ("events", []) => Ok(self.update(Action::ToggleEvents)),
            ("health", []) => {
                Ok(self.update(Action::Health(crate::tui::action::HealthAction::Toggle)))
            }
            ("q" | "quit", []) => Ok(self.update(Action::Quit)),
            ("", []) => Ok(vec![]),
            _ => Err(format!("unknown command {text:?}: {COMMANDS}")),
        }
    }

    fn switch_to(&mut self, typed: &str) -> Result<Vec<Effect>, String> {
        let Some(attached) = &self.attached else {
            return Err(
                "this console runs its own node: use `peerapi attach --context NAME`".into(),
            );
        };
        let exact = attached.contexts.iter().find(|c| c.as_str() == typed);
        let starting: Vec<&String> = attached
            .contexts
            .iter()
            .filter(|c| c.starts_with(typed))
            .collect();
        let name = match (exact, starting.as_slice()) {
            (Some(name), _) | (None, &[name]) => name.clone(),
            (None, []) => return Err(format!("no context {typed:?}; {}", self.context_list())),
            (None, many) => {
                let names: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
                return Err(format!("{typed:?} could be {}", names.join(", ")));
            }
        };
        if name == attached.name {
            return Err(format!("already on {name}"));
        }
        Ok(vec![Effect::SwitchContext(name)])
    }

    /// `/` in the Peers pane: the filter prompt, with the filter in force.
    pub(super) fn open_peer_filter(&mut self) {
        self.prompt = Some(Prompt::new(
            PromptKind::PeerFilter,
            "Filter peers: words in id/agent/protocol, rtt<50ms, rtt>1s (empty: all)",
            &self.peers.filter.text,
        ));
    }

    /// The contexts one can switch to, on one line.
    fn context_list(&self) -> String {
        match &self.attached {
            Some(a) if !a.contexts.is_empty() => {
                let names: Vec<String> = a
                    .contexts
                    .iter()
                    .map(|c| {
                        if *c == a.name {
                            format!("{c} (here)")
                        } else {
                            c.clone()
                        }
                    })
                    .collect();
                format!("contexts: {}", names.join(", "))
            }
            Some(_) => "no contexts: `peerapi context add NAME TARGET` makes one".into(),
            None => "this console runs its own node: it has no contexts to switch to".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};

    use super::*;
    use crate::tui::input::action_for;
    use crate::tui::state::Attached;

    fn attached_to(name: &str, contexts: &[&str]) -> State {
        let mut s = State::new("me".into(), 1 << 20);
        s.attached = Some(Attached {
            name: name.into(),
            role: crate::control::Role::Full,
            gone: false,
            contexts: contexts.iter().map(|c| c.to_string()).collect(),
        });
        s
    }

    /// Types `text` into the open prompt and presses Enter, as keys.
    fn type_and_enter(s: &mut State, text: &str) -> Vec<Effect> {
        for c in text.chars() {
            let key = KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
            let action = action_for(s, Event::Key(key)).expect("the prompt takes text");
            s.update(action);
        }
        let enter = KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE);
        let action = action_for(s, Event::Key(enter)).expect("Enter submits");
        s.update(action)
    }

    fn open_command(s: &mut State) {
        let colon = KeyEvent::new(KeyCode::Char(':'), KeyModifiers::NONE);
        let action = action_for(s, Event::Key(colon)).expect(": is bound");
        s.update(action);
        assert!(matches!(&s.prompt, Some(p) if p.kind == PromptKind::Command));
    }

    fn switch_effect(effects: &[Effect]) -> Option<&str> {
        effects.iter().find_map(|e| match e {
            Effect::SwitchContext(n) => Some(n.as_str()),
            _ => None,
        })
    }

    #[test]
    fn ctx_name_switches_and_a_unique_prefix_is_enough() {
        let mut s = attached_to("alpha", &["alpha", "beta", "gamma-1", "gamma-2"]);
        open_command(&mut s);
        assert_eq!(
            switch_effect(&type_and_enter(&mut s, "ctx beta")),
            Some("beta")
        );
        assert!(s.prompt.is_none(), "the prompt closes on a switch");
        open_command(&mut s);
        assert_eq!(
            switch_effect(&type_and_enter(&mut s, "ctx gamma-2")),
            Some("gamma-2")
        );
        open_command(&mut s);
        assert_eq!(
            switch_effect(&type_and_enter(&mut s, "ctx b")),
            Some("beta")
        );
    }

    #[test]
    fn an_unknown_ambiguous_or_current_context_keeps_the_prompt_and_says_why() {
        let mut s = attached_to("alpha", &["alpha", "beta", "gamma-1", "gamma-2"]);
        for (typed, says) in [
            (
                "ctx nowhere",
                "no context \"nowhere\"; contexts: alpha (here), beta",
            ),
            ("ctx gamma", "\"gamma\" could be gamma-1, gamma-2"),
            ("ctx alpha", "already on alpha"),
            ("ctx", "contexts: alpha (here), beta, gamma-1, gamma-2"),
            ("frobnicate", "unknown command \"frobnicate\""),
        ] {
            open_command(&mut s);
            let effects = type_and_enter(&mut s, typed);
            assert!(switch_effect(&effects).is_none(), "{typed}");
            let error = s.prompt.as_ref().and_then(|p| p.error.clone());
            assert!(
                error.as_deref().is_some_and(|e| e.contains(says)),
                "{typed}: {error:?}"
            );
            s.prompt = None;
        }
    }

    #[test]
    fn the_picker_lists_the_contexts_and_a_console_of_its_own_node_refuses() {
        let mut s = attached_to("beta", &["alpha", "beta"]);
        s.update(Action::Command(CommandAction::PickContext));
        let hint = s.prompt.as_ref().and_then(|p| p.hint.clone());
        assert_eq!(hint.as_deref(), Some("contexts: alpha, beta (here)"));
        assert_eq!(switch_effect(&type_and_enter(&mut s, "al")), Some("alpha"));

        let mut own = State::new("me".into(), 1 << 20);
        open_command(&mut own);
        assert!(switch_effect(&type_and_enter(&mut own, "ctx alpha")).is_none());
        let error = own.prompt.as_ref().and_then(|p| p.error.clone());
        assert!(error.unwrap_or_default().contains("runs its own node"));
    }
}
