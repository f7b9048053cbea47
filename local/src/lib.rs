//! `drs-failback-local`'s parts, shared with the benchmark: the whole failback as the state
//! machines run it (a step as its step execution runs it, [`arc`]; the plan of steps, [`plan`]), what a person sees of it ([`show`], [`summary`]), and the demo
//! fleet ([`fleet`]).

pub mod arc;
pub mod fleet;
pub mod plan;
pub mod show;
pub mod summary;
