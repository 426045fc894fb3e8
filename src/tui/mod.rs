//! The operator console: a ratatui front end over a running node.
//!
//! Flow: keys → keymap → Action → State::update → Effect → node handle →
//! event loop → NodeEvent → Action. Drawing happens on a tick capped near
//! 60 frames/s, never once per chunk.

pub mod action;
mod app;
pub mod history;
pub mod keymap;
pub mod output;
pub mod state;
pub mod view;

pub use app::{run_console, run_demo, DemoArgs};
