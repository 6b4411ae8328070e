//! Group commit. Concurrent writers queue their rows here; one task writes everything queued so
//! far in a single transaction (one fsync) and then answers each writer. Every writer still
//! returns only after its own rows are durable; under load, many share one commit.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::StoreError;

/// Most rows in one commit; the queue holds as many again, which bounds memory under load.
const MAX_GROUP: usize = 1024;

type Reply<O> = oneshot::Sender<Result<O, StoreError>>;

pub(crate) struct GroupCommit<T, O> {
    tx: mpsc::Sender<(T, Reply<O>)>,
}

impl<T: Clone + Send + Sync + 'static, O: Send + 'static> GroupCommit<T, O> {
    /// `write` commits a group in one transaction and returns one output per input, in order.
    pub(crate) fn start<F, Fut>(write: F) -> Self
    where
        F: Fn(Arc<Vec<T>>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<O>, StoreError>> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(MAX_GROUP);
        tokio::spawn(run(write, rx));
        Self { tx }
    }

    pub(crate) async fn submit(&self, item: T) -> Result<O, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send((item, reply)).await.map_err(|_| StoreError::Unavailable)?;
        answer.await.map_err(|_| StoreError::Unavailable)?
    }
}

async fn run<T, O, F, Fut>(write: F, mut rx: mpsc::Receiver<(T, Reply<O>)>)
where
    T: Clone,
    F: Fn(Arc<Vec<T>>) -> Fut,
    Fut: Future<Output = Result<Vec<O>, StoreError>>,
{
    let mut group = Vec::with_capacity(MAX_GROUP);
    while rx.recv_many(&mut group, MAX_GROUP).await > 0 {
        let (items, replies): (Vec<T>, Vec<Reply<O>>) = group.drain(..).unzip();
        let items = Arc::new(items);
        match write(items.clone()).await {
            Ok(outputs) => {
                for (reply, out) in replies.into_iter().zip(outputs) {
                    let _ = reply.send(Ok(out));
                }
            }
            // One bad row must not fail its neighbours: retry each alone so each gets its own answer.
            Err(_) if items.len() > 1 => {
                for (item, reply) in items.iter().zip(replies) {
                    let result = write(Arc::new(vec![item.clone()]))
                        .await
                        .and_then(|mut out| out.pop().ok_or(StoreError::Corrupt("group commit lost a row")));
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send(Err(e));
                }
            }
        }
    }
}
