//! The OIC emulator (`ferry sim`) over real HTTP, and ferry's OIC client and script bindings
//! against it: artifacts, faults, projects, schedules, the wire format, identity (SCIM, JWT).
//! REST conformance against docs/oic-api.md (`sim_conformance`, `sim_recorded`) and the public
//! scripts (`sim_scripts`: curl + jq, Python requests). Nothing outside the test process is
//! needed. Apart, in their own binaries: `oic_large` and `sim_scale` (they measure the process's
//! memory).
//!
//! One test binary with a module per area (as cargo's own `tests/testsuite`): run one area with
//! `cargo test --test emulator MODULE::`.

#[path = "../support/mod.rs"]
mod support;

mod adaptive_concurrency;
mod jwt_auth;
mod oic_client;
mod oic_projects;
mod oic_resources;
mod oic_schedules;
mod oic_script;
mod oic_wire;
mod rbac_identity;
mod sim_artifacts;
mod sim_conformance;
mod sim_connections;
mod sim_faults;
mod sim_generated;
mod sim_jobs;
mod sim_lifecycle;
mod sim_persist;
mod sim_projects;
mod sim_recorded;
mod sim_scim;
mod sim_scripts;
