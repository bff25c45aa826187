//! Images: references, the OCI documents, the on-disk store, layer unpacking, archive import
//! and registry pulls.

pub mod archive;
pub mod oci;
pub mod reference;
pub mod registries;
pub mod registry;
pub mod store;
pub mod unpack;

pub use reference::Reference;
pub use store::{ImageError, ImageRecord, ImageStore};
