//! App methods over a connection's muxrpc: methods the node itself does not serve, like
//! pzp-promise's `promise.follow`. A remote's request for one goes to the app on a bounded
//! channel ([`AppMethods`]) and is answered through [`AppReply`]; the app calls such a method
//! on a connected peer with `NodeHandle::call`.
//!
//! Bounds (remote input): at most [`APP_REQUESTS_QUEUED_MAX`] requests wait for the app across
//! the node (further ones are answered "busy"), and at most [`APP_CALLS_PER_CONNECTION_MAX`]
//! are open per connection in each direction.

use std::collections::BTreeSet;

use proto::ids::PubKey;
use serde_json::Value;
use tokio::sync::mpsc;

/// Most remote requests waiting for the app, across all connections.
pub const APP_REQUESTS_QUEUED_MAX: usize = 64;
/// Most app calls open at once on one connection, per direction.
pub const APP_CALLS_PER_CONNECTION_MAX: usize = 8;

/// A remote's request for an app method.
#[derive(Debug)]
pub struct AppRequest {
    /// Who asked (the SHSE key it proved).
    pub remote: PubKey,
    /// The method path, e.g. `["promise", "follow"]`.
    pub name: Vec<String>,
    /// Its arguments.
    pub args: Vec<Value>,
    /// Where the answer goes.
    pub reply: AppReply,
}

/// How an answer reaches its connection (the connection hands it to itself).
type Answer = Box<dyn FnOnce(Result<Value, String>) + Send>;

/// The answer to one [`AppRequest`]; dropping it unanswered answers with an error.
pub struct AppReply {
    answer: Option<Answer>,
}

impl std::fmt::Debug for AppReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppReply")
            .field("answered", &self.answer.is_none())
            .finish()
    }
}

impl AppReply {
    pub(crate) fn new(answer: impl FnOnce(Result<Value, String>) + Send + 'static) -> Self {
        Self {
            answer: Some(Box::new(answer)),
        }
    }

    /// Answers: a JSON value, or an error message (the remote sees muxrpc's error body).
    pub fn send(mut self, result: Result<Value, String>) {
        if let Some(answer) = self.answer.take() {
            answer(result);
        }
    }
}

impl Drop for AppReply {
    fn drop(&mut self) {
        if let Some(answer) = self.answer.take() {
            answer(Err("the method ended without an answer".to_owned()));
        }
    }
}

/// The app methods a node serves and the channel their requests go to.
#[derive(Debug, Clone)]
pub struct AppMethods {
    methods: BTreeSet<Vec<String>>,
    requests: mpsc::Sender<AppRequest>,
}

impl AppMethods {
    /// Serves `methods` (each a full method path); requests arrive on the receiver.
    #[must_use]
    pub fn new(methods: &[&[&str]]) -> (Self, mpsc::Receiver<AppRequest>) {
        let (requests, receiver) = mpsc::channel(APP_REQUESTS_QUEUED_MAX);
        let methods = methods
            .iter()
            .map(|path| path.iter().map(|part| (*part).to_owned()).collect())
            .collect();
        (Self { methods, requests }, receiver)
    }

    /// Whether `name` is one of the app's methods.
    pub(crate) fn serves(&self, name: &[String]) -> bool {
        self.methods.contains(name)
    }

    /// Queues a request; gives it back when the app is [`APP_REQUESTS_QUEUED_MAX`] behind or
    /// gone.
    pub(crate) fn offer(&self, request: AppRequest) -> Result<(), AppRequest> {
        self.requests
            .try_send(request)
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(request)
                | mpsc::error::TrySendError::Closed(request) => request,
            })
    }
}
