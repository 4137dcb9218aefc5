//! What the integration tests share: the harness that runs the real binary against the real
//! simulator and checks its output, and the OpenAPI validator for response bodies.

pub mod harness;
pub mod openapi;

pub use harness::*;
