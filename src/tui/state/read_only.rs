//! `--read-only`: a console that watches a subnet and changes nothing in
//! it. The keys that would still answer, saying why they do nothing.

use super::State;
use crate::tui::action::Action;
use crate::tui::action::RunsAction;

/// What read-only mode refuses of `action`, named for the operator.
fn refused(action: &Action) -> Option<&'static str> {
    Some(match action {
        Action::Send | Action::RerunCall => "sending calls",
        Action::CancelCall => "cancelling calls",
        Action::StartDial => "dialling peers",
        Action::DisconnectPeer => "disconnecting peers",
        Action::AddRoute | Action::EditRoute | Action::DeleteRoute => "editing routes",
        Action::Runs(
            RunsAction::StartFanOut
            | RunsAction::AskLoad
            | RunsAction::StartLoad(_)
            | RunsAction::StartHopVsDirect,
        ) => "fan-out, load and hop-vs-direct runs",
        _ => return None,
    })
}

impl State {
    /// In read-only mode, whether `action` is refused (and the notice
    /// saying so is up).
    pub(super) fn refuse_when_read_only(&mut self, action: &Action) -> bool {
        let Some(what) = self.read_only.then(|| refused(action)).flatten() else {
            return false;
        };
        self.notice(format!(
            "read-only: {what} is off (this console was started with --read-only)"
        ));
        true
    }
}
