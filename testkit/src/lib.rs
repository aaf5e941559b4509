pub mod apiserver;
pub mod fake_kubectl;
pub mod harness;
