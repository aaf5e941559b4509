pub mod apiserver;
pub mod fake_kubectl;
