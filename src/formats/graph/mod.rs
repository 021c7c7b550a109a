//! Graphs: frozen `GraphDef`s and SavedModels (`saved_model.pb` plus its variables
//! bundle), with their `Const` tensors.

pub mod graphdef;
pub mod prescan;
pub mod savedmodel;
