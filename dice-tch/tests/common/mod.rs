//! Helpers shared by the tests and the `train_unet` example.
#![allow(dead_code)]
pub mod shapes;
