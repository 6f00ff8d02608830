//! Integration tests: the real bridge against a real broker (see `helpers`).

mod callbacks;
mod errors;
mod faults;
mod helpers;
mod operations;
mod process;
mod sender;
