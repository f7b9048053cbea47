//! DRS in another account and region: the port the function reaches it through ([`Reach`]),
//! and why it could not ([`Unreachable`]). The SDK adapter assumes the role the target account
//! grants and keeps a client per account and region while its keys last (`aws::targets`).

use std::future::Future;
use std::pin::Pin;

use super::Target;

/// Why an account and region could not be reached: the error's name and message, as STS (or
/// the configuration) gave them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    pub code: String,
    pub message: String,
    /// For now only (STS throttled, not answering): the call fails, to be made again, instead
    /// of the place being taken for unreachable.
    pub transient: bool,
}

/// A DRS client for an account and region other than the function's own.
pub trait Reach<D>: Send + Sync {
    fn reach<'a>(
        &'a self,
        target: &'a Target,
    ) -> Pin<Box<dyn Future<Output = Result<D, Unreachable>> + Send + 'a>>;
}
