//! The second-factor types under their earlier path, for the layers above; the use cases live
//! in [`crate::factors`], one module per kind.

pub use crate::factors::{
    AppEnrolment, FactorAdded, FactorRow, Method, SecondFactorProven, SecondFactorView, SecurityView, SetupView,
};
