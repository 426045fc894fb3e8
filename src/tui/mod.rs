//! The operator console: a ratatui front end over a running node.
//!
//! Flow: keys → keymap → Action → State::update → Effect → node handle →
//! event loop → NodeEvent → Action. Drawing happens on a tick capped near
//! 60 frames/s, never once per chunk.

pub mod action;
mod app;
mod demo;
pub mod history;
pub mod keymap;
pub mod output;
pub mod state;
mod terminal;
pub mod view;

pub use app::run_console;
pub use demo::{run_demo, DemoOptions};
pub use terminal::data_dir;
