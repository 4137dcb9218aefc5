//! The integration tests, one crate so the binary's test harness links once: each module is
//! one area of the product, run through the real binary, the real simulator and the real
//! Prometheus programs; `support` holds what they share.

mod support;

mod accounts;
mod budget;
mod check;
mod clock_steps;
mod collect;
mod deadline;
mod delivery;
mod deploy;
mod failures;
mod field;
mod fuzz_mappers;
mod hardening;
mod host;
mod household;
mod layering;
mod login;
mod openapi_simulator;
mod openapi_validator;
mod ops;
mod ops_cli;
mod readme;
mod records;
mod replay;
mod schedule;
mod scripted_day;
mod token_safety;
mod weather;
