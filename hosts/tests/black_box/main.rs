//! Hosts of this package judged black-box, one test binary: on a stage (`stage`), through the
//! motivating report (`headline`), and through `coherence conform --host` (`conform`).

mod common;
mod conform;
mod headline;
mod stage;
