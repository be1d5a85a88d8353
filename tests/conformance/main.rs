//! The emulator as a public OIC client sees it: the REST conformance tests and the public
//! scripts (curl + jq, Python requests). These tests switch on stamped exports
//! (`ferry::sim::archive::set_stamped_exports`, as real OIC: two exports never byte-identical),
//! which is process-wide, so they live in their own test binary, apart from the client tests
//! that compare export checksums.

#[path = "../support/mod.rs"]
mod support;

mod sim_conformance;
mod sim_scripts;
