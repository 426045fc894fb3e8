//! Integration tests: real libp2p swarms over TCP on 127.0.0.1 and real HTTP
//! backends on loopback. Every wait is bounded.

mod attach;
mod cli;
mod common;
#[cfg(feature = "console")]
mod console;
mod console_backend;
mod control;
mod discovery;
mod embedded;
mod faults;
mod files;
mod fleet;
mod fleet_actions;
mod framed;
mod fuzz_regressions;
mod health;
mod hostile;
mod interop;
mod keys;
mod link_load;
mod link_py;
mod links;
mod load;
mod logs;
mod long_lived;
mod metrics;
mod no_leak;
mod node_calls;
mod paused_readers;
mod ports_and_output;
mod python;
mod quiet_callers;
mod reload;
mod results;
mod side_listeners;
mod silent;
mod sshd;
mod strict;
mod subnet;
mod subnet_dag;
mod subnet_telemetry;
mod switch;
mod timing;
