//! The operator console: a ratatui front end over a running node.
//!
//! Flow: terminal event → `input` (who owns the keys; `keymap` otherwise)
//! → `Action` → `State::update` → `Effect` → `app` runs it against the node
//! → `NodeEvent`/call bytes → `Action`. Drawing (`view`, placed by `layout`)
//! only reads the state, on a tick capped near 60 frames/s, never once per
//! chunk.
//!
//! Where a change goes: a new pane is a file in `view/` plus its region in
//! `layout.rs`, its sub-state in `state/` and its keys in `keymap.rs`.

pub mod action;
mod app;
pub mod call_response;
mod demo;
pub mod effect;
pub mod fleet;
pub mod history;
pub mod input;
pub mod jq;
pub mod keymap;
pub mod layout;
pub mod line_keys;
mod link_pump;
mod reached;
mod runner;
pub mod state;
mod switch;
mod terminal;
pub mod user_keys;
pub mod view;

pub use app::{run_attached, run_console, Console, ConsoleOptions};
pub use demo::{run_demo, DemoOptions};
pub use reached::{Reached, Reconnect};
pub use switch::{reach, reach_context};
pub use terminal::data_dir;
