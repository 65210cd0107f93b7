//! The engine: work the control plane does on its own, outside any one request. `hub` holds
//! the agents' control channels; `commands` schedules Run Command invocations over them.
//! (Session relaying and the ping monitor will live here too.)

pub mod commands;
pub mod hub;
