//! Simulator and conformance kit (in progress).
