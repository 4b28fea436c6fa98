//! Property tests, known-answer vectors and hostile-input tests across the whole module.

mod garbage;
mod gen;
mod order;
mod roundtrip;
mod text_forms;
mod vectors;
