//! Hosts of this package judged black-box, one test binary: on a stage (`stage`), through the
//! motivating report (`headline`), through `coherence conform --host` (`conform`), and the model's own host logic
//! against adapter mode (`reference`).

mod common;
mod conform;
mod headline;
mod reference;
mod stage;
